"""The second scene family (annotator/demo/clutter.py): deterministic, multilabel, exact truth."""

import numpy as np

from annotator.demo import clutter, scenes


def test_a_scene_is_the_same_whoever_asks_and_however_many():
    a = clutter.render_scene(7, seed=3, size=(96, 96))
    b = list(clutter.generate(3, seed=3, size=(96, 96), start=5))[2]
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image)) and a.objects == b.objects
    assert not np.array_equal(np.asarray(a.image), np.asarray(clutter.render_scene(7, seed=4, size=(96, 96)).image))


def test_it_is_not_the_demo_generator():
    assert not set(clutter.LABELS) & set(scenes.LABELS)
    demo = np.asarray(scenes.render_scene(0, size=(64, 64)).image)
    assert not np.array_equal(demo, np.asarray(clutter.render_scene(0, size=(64, 64)).image))


def test_its_scenes_are_multilabel_with_small_and_large_objects():
    many = [clutter.render_scene(i, size=(128, 128)) for i in range(60)]
    counts = [len(s.labels) for s in many]
    assert np.mean(counts) > 1.3 and max(counts) >= 3
    assert {label for s in many for label in s.labels} == set(clutter.LABELS)
    sides = [max(o.box[2], o.box[3]) / 128 for s in many for o in s.objects]
    assert min(sides) < 0.15 and max(sides) > 0.4


def test_its_ground_truth_counts_only_what_stays_visible():
    many = [clutter.render_scene(i, size=(128, 128)) for i in range(80)]
    hidden = [o for s in many for o in s.hidden]
    assert hidden, "some objects are covered by occluders and later objects"
    assert all(o.visible < clutter.VISIBLE_MIN for o in hidden)
    for s in many:
        assert all(o.visible >= clutter.VISIBLE_MIN for o in s.objects)
        for o in s.objects:  # boxes are of visible pixels, inside the image
            x, y, w, h = o.box
            assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128 and w > 0 and h > 0


def test_its_large_variant_draws_the_same_kinds_of_scene_with_objects_as_large_as_the_demos():
    default = clutter.render_scene(3, size=(128, 128))
    same = clutter.render_scene(3, size=(128, 128), sizes=clutter.SIZES)
    assert np.array_equal(np.asarray(default.image), np.asarray(same.image)) and default.objects == same.objects
    many = [clutter.render_scene(i, size=(128, 128), sizes=clutter.LARGE) for i in range(60)]
    small = [clutter.render_scene(i, size=(128, 128)) for i in range(60)]

    def sides(family):
        return [max(o.box[2], o.box[3]) / 128 for s in family for o in s.objects]

    assert np.median(sides(many)) > 1.5 * np.median(sides(small))
    assert min(sides(many)) > 0.08  # no object of a few pixels at 32 px
    assert {label for s in many for label in s.labels} == set(clutter.LABELS)
    assert np.mean([len(s.labels) for s in many]) > 1.3  # still multilabel, occluded objects still drop out


def test_its_solid_variant_draws_each_object_in_one_colour_that_stands_out_from_the_background():
    options = {"sizes": clutter.LARGE, "stand_out": True, "one_colour": True}
    for i in range(20):
        scene = clutter.render_scene(i, size=(128, 128), **options)
        assert scene.objects or scene.hidden
    rng = np.random.default_rng(0)
    layer = clutter._object_layer(rng, "house", 128, 128, clutter.LARGE, np.array([120.0, 120.0, 120.0]), True)
    pixels = np.asarray(layer)
    drawn = pixels[pixels[..., 3] > 127][:, :3]
    assert len(np.unique(drawn, axis=0)) == 1  # body, roof and door in one colour
    assert abs(float(scenes.luminance(drawn[0])) - 120.0) >= clutter.STAND_OUT
    parts = np.asarray(clutter._object_layer(np.random.default_rng(0), "house", 128, 128, clutter.LARGE))
    assert len(np.unique(parts[parts[..., 3] > 127][:, :3], axis=0)) > 1  # the default: any colour per part
