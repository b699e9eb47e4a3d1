import numpy as np
import pytest
import torch

from annotator.demo.scenes import LABELS, render_scene
from labeling.ml.backbone import BarlowTwins, ModelConfig, load_backbone
from labeling.ml.detector import DetectorConfig, DetectorRuntime, Detections, Letterbox, build_detector, denormalise
from labeling.ml.detector import from_letterbox, letterbox_image, load_detector, match_detections, normalise, predict
from labeling.ml.detector import save_detector, to_letterbox, train_detector
from tests.labeling.ml.toys import FakeClock


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("width,height,size", [(200, 160, 128), (160, 200, 128), (640, 480, 256), (33, 301, 64)])
def test_it_round_trips_boxes_through_the_letterbox(width, height, size):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 0.6, (20, 2)) * [width, height]
    wh = rng.uniform(0.05, 0.4, (20, 2)) * [width, height]
    boxes = np.concatenate([xy, wh], axis=1)
    box = Letterbox.fit(width, height, size)
    inside = to_letterbox(boxes, box)
    # Every box lands inside the resized image, not in the padding.
    inner_w, inner_h = box.inner
    assert inside[:, [0, 2]].min() >= box.pad_x - 1e-3 and inside[:, [0, 2]].max() <= box.pad_x + inner_w + 1e-3
    assert inside[:, [1, 3]].min() >= box.pad_y - 1e-3 and inside[:, [1, 3]].max() <= box.pad_y + inner_h + 1e-3
    np.testing.assert_allclose(from_letterbox(inside, box), boxes, atol=1e-3)


def test_it_round_trips_normalised_boxes():
    boxes = np.array([[10, 20, 30, 40], [0, 0, 200, 100]], dtype=np.float32)
    fractions = normalise(boxes, 200, 100)
    np.testing.assert_allclose(fractions[1], [0, 0, 1, 1])
    np.testing.assert_allclose(denormalise(fractions, 200, 100), boxes)


def test_the_letterbox_keeps_the_aspect_and_the_pixels_where_the_boxes_say():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[20:60, 40:100] = 255  # a white block: x 40..100, y 20..60
    out, box = letterbox_image(image, 128)
    assert out.shape == (128, 128, 3) and (box.pad_x, box.pad_y) == (0, 32)
    x0, y0, x1, y1 = to_letterbox([[40, 20, 60, 40]], box)[0]
    assert out[int(y0) + 2 : int(y1) - 2, int(x0) + 2 : int(x1) - 2].min() > 200
    assert (out[: box.pad_y] == out[0, 0]).all()  # padding is flat


def test_clipping_keeps_predictions_inside_the_image():
    box = Letterbox.fit(200, 100, 128)
    out = from_letterbox([[-10, 0, 140, 140]], box)[0]
    assert out[0] == 0 and out[1] == 0 and out[0] + out[2] <= 200 + 1e-4 and out[1] + out[3] <= 100 + 1e-4


def test_matching_follows_the_ap50_rule():
    found = Detections(
        boxes=np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 10, 10], [0, 0, 10, 10]], np.float32),
        scores=np.array([0.9, 0.8, 0.7, 0.6], np.float32),
        labels=np.array([0, 0, 0, 1], np.int64),
    )
    correct = match_detections(found, [[0, 0, 10, 10], [50, 52, 10, 10]], [0, 0])
    # The second box overlaps a truth the first already took; the last has the wrong label.
    assert correct.tolist() == [True, False, True, False]


def _scenes(n: int, size=(200, 160)):
    scenes = [render_scene(i, size=size) for i in range(n)]
    images = [np.asarray(s.image.convert("RGB")) for s in scenes]
    boxes = [np.array([o.box for o in s.objects], np.float32).reshape(-1, 4) for s in scenes]
    labels = [np.array([LABELS.index(o.label) for o in s.objects], np.int64) for s in scenes]
    return images, boxes, labels


def _tiny(**kw) -> DetectorConfig:
    return DetectorConfig(
        **{"num_classes": len(LABELS), "size": 96, "fpn_channels": 64, "steps": 40, "batch_size": 2, "lr": 3e-3, **kw}
    )


def test_a_tiny_training_lowers_its_loss_and_finds_the_boxes_it_saw():
    images, boxes, labels = _scenes(2)
    config = _tiny(warmup_steps=4)
    result = train_detector(config, images, boxes, labels)
    assert result.status == "finished" and result.steps_done == 40
    assert np.mean(result.losses[-5:]) < 0.6 * np.mean(result.losses[:5])
    found = predict(result.model, images, config)
    assert all(len(f.scores) for f in found)
    # Boxes come back in image pixels, inside the image, best first.
    for f in found:
        assert (f.boxes[:, 0] >= 0).all() and (f.boxes[:, 0] + f.boxes[:, 2] <= 200 + 1e-3).all()
        assert (np.diff(f.scores) <= 0).all()
    # The best detection of each training image is one of its boxes.
    hits = [match_detections(f, b, lab, iou=0.3)[0] for f, b, lab in zip(found, boxes, labels)]
    assert any(hits)


def test_an_image_without_boxes_is_a_negative_not_an_error():
    images, boxes, labels = _scenes(2)
    boxes[1], labels[1] = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    result = train_detector(_tiny(steps=3), images, boxes, labels)
    assert result.steps_done == 3 and all(np.isfinite(result.losses))


def test_the_backbone_starts_from_barlow_twins_and_stays_frozen():
    model_config = ModelConfig(resolution=32, small_stem=False, projector=(64, 64))
    barlow = BarlowTwins(model_config)
    with torch.no_grad():
        barlow.backbone.layer3[0].conv1.weight.normal_()
    backbone = load_backbone(barlow.state_dict(), model_config)
    images, boxes, labels = _scenes(2)
    result = train_detector(_tiny(steps=3), images, boxes, labels, backbone=backbone)
    body = result.model.backbone.body
    torch.testing.assert_close(body.layer3[0].conv1.weight, barlow.backbone.layer3[0].conv1.weight)
    assert not any(p.requires_grad for p in body.parameters())
    # A fine-tune unfreezes the top stages only.
    unfrozen = build_detector(_tiny(trainable_layers=2)).backbone.body
    assert all(p.requires_grad for p in unfrozen.layer4.parameters())
    assert not any(p.requires_grad for p in unfrozen.layer2.parameters())


def test_a_narrower_barlow_twins_backbone_carries_a_detector_too():
    model_config = ModelConfig(resolution=32, small_stem=True, projector=(16, 16), width=16)
    backbone = load_backbone(BarlowTwins(model_config).state_dict(), model_config)
    images, boxes, labels = _scenes(2)
    result = train_detector(_tiny(steps=3, small_stem=True), images, boxes, labels, backbone=backbone)
    assert result.steps_done == 3 and all(np.isfinite(result.losses))
    found = predict(result.model, images, _tiny(small_stem=True))
    assert len(found) == 2 and all(f.boxes.shape == (len(f.scores), 4) for f in found)


def test_a_resumed_training_equals_an_uninterrupted_one(tmp_path):
    images, boxes, labels = _scenes(2)
    config = _tiny(steps=6)
    torch.manual_seed(0)
    whole = train_detector(config, images, boxes, labels)
    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    path = tmp_path / "detector.pt"
    torch.manual_seed(0)
    first = train_detector(
        config, images, boxes, labels, runtime=DetectorRuntime(checkpoint_path=path, should_stop=stop_after_three)
    )
    assert (first.status, first.steps_done) == ("cancelled", 3)
    torch.manual_seed(1)  # the head's random start is in the checkpoint: this seed must not matter
    resumed = train_detector(config, images, boxes, labels, runtime=DetectorRuntime(checkpoint_path=path))
    assert (resumed.status, resumed.steps_done) == ("finished", 6)
    np.testing.assert_allclose(resumed.losses, whole.losses, rtol=1e-4)


def test_a_budgeted_fit_stops_when_its_time_is_up_with_its_schedule_at_the_end(monkeypatch):
    import labeling.ml.detector as detector

    schedule, rate = [], detector._learning_rate

    def recorded(config, step, total_steps=None):
        schedule.append(total_steps)
        return rate(config, step, total_steps)

    monkeypatch.setattr(detector, "_learning_rate", recorded)
    images, boxes, labels = _scenes(2)
    clock, seen = FakeClock(1.0), []
    config = _tiny(steps=1000, time_budget_s=8.0, warmup_steps=2)
    result = train_detector(
        config,
        images,
        boxes,
        labels,
        runtime=DetectorRuntime(on_progress=seen.append, should_stop=clock.tick, clock=clock, progress_every_s=1.0),
    )
    # 1 s a step and 8 s to spend: 8 steps, not the 1,000 the config caps it at; a fit whose time is
    # up has finished (its boxes are suggested), it was not cancelled.
    assert (result.status, result.steps_done) == ("finished", 8)
    assert seen[-1].step == 8 and seen[-1].eta_s == 0
    # Every report has a rate, the first included (its step is not counted in the measured rate).
    assert seen[0].step == 1 and all(p.images_per_s > 0 for p in seen)
    # The ETA counts down the budget, not the 1,000 steps.
    assert all(p.eta_s is None or p.eta_s <= 8 - p.step + 1e-9 for p in seen)
    # The cosine was laid over the 8 steps the budget bought once the rate was measured (the first
    # steps, before it, are in the warm-up whatever the length), so the last step's rate is near 0.
    assert schedule[-1] == 8 and schedule[0] == 1000
    assert rate(config, 7, schedule[-1]) < 0.1 * config.lr < 0.9 * config.lr < rate(config, 7, 1000)


def test_a_budgeted_fit_resumes_with_the_time_it_has_left(tmp_path):
    images, boxes, labels = _scenes(2)
    path = tmp_path / "detector.pt"
    config = _tiny(steps=1000, time_budget_s=6.0)
    clock, calls = FakeClock(1.0), {"n": 0}

    def stop_after_three() -> bool:  # 1 s for each of the three steps, then a kill
        calls["n"] += 1
        return calls["n"] > 3 or clock.tick()

    first = train_detector(
        config,
        images,
        boxes,
        labels,
        runtime=DetectorRuntime(checkpoint_path=path, should_stop=stop_after_three, clock=clock),
    )
    assert (first.status, first.steps_done) == ("cancelled", 3)
    assert torch.load(path, weights_only=True)["elapsed_s"] == 3.0
    clock2 = FakeClock(1.0)
    resumed = train_detector(
        config,
        images,
        boxes,
        labels,
        runtime=DetectorRuntime(checkpoint_path=path, should_stop=clock2.tick, clock=clock2),
    )
    # 3 of the 6 s were spent before the kill: the resumed fit takes the 3 left, not a fresh 6.
    assert (resumed.status, resumed.steps_done) == ("finished", 6)


def test_a_saved_detector_predicts_the_same(tmp_path):
    images, boxes, labels = _scenes(2)
    config = _tiny(steps=5)
    result = train_detector(config, images, boxes, labels)
    save_detector(tmp_path / "d.pt", result.model, config, step=5)
    loaded, loaded_config = load_detector(tmp_path / "d.pt")
    assert loaded_config == config
    a, b = predict(result.model, images[:1], config), predict(loaded, images[:1], config)
    np.testing.assert_allclose(a[0].scores, b[0].scores, rtol=1e-5)


def test_configs_that_cannot_work_are_refused():
    with pytest.raises(ValueError):
        DetectorConfig(num_classes=2, size=100)
    with pytest.raises(ValueError):
        DetectorConfig(num_classes=0)
    with pytest.raises(ValueError):
        DetectorConfig(num_classes=2, fpn_channels=32)
    with pytest.raises(ValueError):
        DetectorConfig(num_classes=2, time_budget_s=0)


def test_batchnorm_statistics_are_recalibrated_on_the_detectors_images_weights_untouched():
    from labeling.ml.augment import normalize, to_float
    from labeling.ml.backbone import resnet18_backbone
    from labeling.ml.detector import recalibrate_batchnorm

    torch.manual_seed(0)
    backbone = resnet18_backbone(small_stem=False).eval()
    pixels = np.random.default_rng(0).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    weight = backbone.conv1.weight.clone()
    recalibrate_batchnorm(backbone, pixels, device=torch.device("cpu"), batch_size=6)
    with torch.no_grad():
        first = backbone.conv1(normalize(to_float(torch.from_numpy(pixels))))  # what bn1 sees
    torch.testing.assert_close(backbone.bn1.running_mean, first.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(backbone.conv1.weight, weight)
    assert not backbone.training and backbone.bn1.momentum == 0.1


def test_letterboxed_images_from_a_cache_train_and_predict_as_the_originals_do():
    from labeling.ml.detector import letterboxed_set, predict_letterboxed, training_set

    images, boxes, labels = _scenes(2)  # 200 x 160: the letterbox pads
    config = _tiny(steps=5)
    pixels = np.stack([letterbox_image(image, config.size)[0] for image in images])
    sizes = [(image.shape[1], image.shape[0]) for image in images]
    direct, cached = training_set(images, boxes, labels, config.size), letterboxed_set(pixels, sizes, boxes, labels)
    np.testing.assert_array_equal(direct.pixels, cached.pixels)
    for a, b in zip(direct.boxes + direct.labels, cached.boxes + cached.labels):
        np.testing.assert_array_equal(a, b)
    model = train_detector(config, cached).model
    for a, b in zip(predict(model, images, config), predict_letterboxed(model, pixels, sizes)):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
        np.testing.assert_array_equal(a.labels, b.labels)
    with pytest.raises(ValueError, match="as many"):
        letterboxed_set(pixels, sizes[:1], boxes, labels)
