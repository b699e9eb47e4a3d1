"""The predictions parsers: pure, no database."""

import json

import pytest

from annotator.formats import FormatError, Prediction
from annotator.formats.predictions import BoxPrediction, ImageRef, read_coco_results, read_json, read_predictions
from annotator.formats.predictions import read_yolo


def test_it_reads_json_tags_as_a_list_or_a_mapping_and_boxes():
    doc = {
        "model_version": " yolo-v8n ",
        "predictions": [
            {"image_id": 7, "tags": [{"label": "dog", "score": 0.9}]},
            {"sha256": "ABC", "tags": {"cat": 0.25}},
            {"file_name": "x/y/a.png", "boxes": [{"label": "dog", "bbox": [1, 2, 3, 4], "score": 1}]},
        ],
    }
    parsed = read_json(json.dumps(doc).encode())
    assert parsed.model_version == "yolo-v8n"
    assert [p.ref for p in parsed.images] == [ImageRef(7), ImageRef(sha256="abc"), ImageRef(file_name="a.png")]
    assert parsed.images[0].tags == (Prediction("dog", 0.9),)
    assert parsed.images[1].tags == (Prediction("cat", 0.25),)
    assert parsed.images[2].boxes == (BoxPrediction("dog", 1, 2, 3, 4, 1.0),)
    assert parsed.labels == ["dog", "cat"] and parsed.tag_count == 2 and parsed.box_count == 1


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"tags": {"dog": 0.5}}, "needs “image_id”, “sha256” or “file_name”"),
        ({"image_id": True, "tags": {}}, "“image_id” must be an integer"),
        ({"image_id": 1, "tags": {"dog": 1.5}}, "score must be a number from 0 to 1"),
        ({"image_id": 1, "tags": {"dog": "high"}}, "score must be a number from 0 to 1"),
        ({"image_id": 1, "tags": [{"label": "", "score": 0.5}]}, "“label” must be a label name"),
        ({"image_id": 1, "boxes": [{"label": "dog", "bbox": [0, 0, 0, 5], "score": 0.5}]}, "width and a height"),
        ({"image_id": 1, "boxes": [{"label": "dog", "bbox": [0, 0, 5], "score": 0.5}]}, "four numbers"),
        ({"image_id": 1, "boxes": [{"label": "dog", "bbox": [0, 0, 1, float("nan")], "score": 0.5}]}, "four numbers"),
    ],
)
def test_it_refuses_a_bad_json_entry_saying_where(entry, message):
    with pytest.raises(FormatError, match=message) as error:
        read_json(json.dumps({"model_version": "m", "predictions": [entry]}).encode())
    assert "prediction #0" in str(error.value)


def test_it_refuses_what_is_not_a_predictions_document():
    for data in (b"not json", b"[]", b'{"model_version": 3, "predictions": []}'):
        with pytest.raises(FormatError):
            read_json(data)


def test_a_bare_coco_results_list_uses_twinlabel_ids_and_the_projects_label_order():
    results = [
        {"image_id": 5, "category_id": 2, "bbox": [10, 10, 20, 20], "score": 0.8},
        {"image_id": 5, "category_id": 1, "score": 0.3},  # no bbox: an image-level prediction
        {"image_id": 6, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.1},
    ]
    parsed = read_coco_results(json.dumps(results).encode(), categories={1: "cat", 2: "dog"})
    first, second = parsed.images
    assert first.ref == ImageRef(5) and first.tags == (Prediction("cat", 0.3),)
    assert first.boxes == (BoxPrediction("dog", 10, 10, 20, 20, 0.8),)
    assert second.ref == ImageRef(6) and second.boxes[0].label == "cat"


def test_a_coco_document_brings_its_own_images_and_categories():
    doc = {
        "images": [{"id": 1, "file_name": "dir/a.jpg", "sha256": "F00"}],
        "categories": [{"id": 9, "name": "dog"}],
        "annotations": [{"image_id": 1, "category_id": 9, "bbox": [1, 1, 2, 2], "score": 0.5}],
    }
    parsed = read_coco_results(json.dumps(doc).encode(), categories={})
    assert parsed.images[0].ref == ImageRef(None, "f00", "a.jpg")
    assert parsed.images[0].boxes[0].label == "dog"


@pytest.mark.parametrize(
    "results, message",
    [
        ([{"image_id": 1, "category_id": 3, "score": 0.5}], "category 3"),
        ([{"image_id": "1", "category_id": 1, "score": 0.5}], "“image_id” must be an integer"),
        ([{"image_id": 1, "category_id": 1}], "score must be a number"),
        ({"images": [], "categories": [], "annotations": [{"image_id": 4, "category_id": 1, "score": 0.1}]}, "image 4"),
        ({"annotations": []}, "needs “images”"),
        ({"images": [{"id": 1, "file_name": "a"}], "annotations": []}, "needs “categories”"),
    ],
)
def test_it_refuses_bad_coco_results(results, message):
    with pytest.raises(FormatError, match=message):
        read_coco_results(json.dumps(results).encode(), categories={1: "cat"})


def test_yolo_lines_carry_a_confidence_column_and_are_matched_by_stem():
    files = [
        ("data.yaml", b"names: [cat, dog]\n"),
        ("labels/a.txt", b"1 0.5 0.5 0.2 0.4 0.75\n\n0 0.1 0.1 0.2 0.2 0.5\n"),
        ("labels/b.txt", b""),  # a file with no line: the model found nothing there
    ]
    parsed = read_yolo(files)
    a, b = parsed.images
    assert a.ref == ImageRef(file_name="a", by_stem=True) and b.boxes == ()
    box = a.boxes[0]
    assert box.label == "dog" and box.score == 0.75 and box.normalised
    assert (box.x, box.y, box.w, box.h) == pytest.approx((0.4, 0.3, 0.2, 0.4))


@pytest.mark.parametrize(
    "line, message",
    [
        (b"0 0.5 0.5 0.2 0.2\n", "six columns"),  # a ground-truth file, not predictions
        (b"2 0.5 0.5 0.2 0.2 0.9\n", "class 2"),
        (b"0 0.5 0.5 1.2 0.2 0.9\n", "normalised"),
        (b"0 0.5 0.5 0.2 0.2 1.9\n", "score must be a number from 0 to 1"),
        (b"x 0.5 0.5 0.2 0.2 0.9\n", "numbers only"),
    ],
)
def test_it_refuses_bad_yolo_lines_saying_where(line, message):
    with pytest.raises(FormatError, match=message) as error:
        read_yolo([("classes.txt", b"cat\ndog\n"), ("a.txt", line)])
    assert "a.txt line 1" in str(error.value)


def test_yolo_needs_the_class_names():
    with pytest.raises(FormatError, match="class names"):
        read_yolo([("a.txt", b"0 0.5 0.5 0.2 0.2 0.9\n")])


def test_read_predictions_dispatches_and_checks_the_file_count():
    doc = json.dumps([{"image_id": 1, "category_id": 2, "score": 0.4}]).encode()
    assert read_predictions("coco", [("r.json", doc)], label_names=["cat", "dog"]).images[0].tags[0].label == "dog"
    with pytest.raises(FormatError, match="one file"):
        read_predictions("json", [("a", b"{}"), ("b", b"{}")], label_names=[])
    with pytest.raises(FormatError, match="Unknown predictions format"):
        read_predictions("csv", [("a", b"")], label_names=[])
