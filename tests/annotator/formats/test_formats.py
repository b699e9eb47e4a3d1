"""Each format module, read back by the tools that read that format: pycocotools, ElementTree,
PyYAML, pandas and the csv module, zipfile. Pure functions: no database."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
import zipfile

import pandas as pd
import pytest
import yaml
from pycocotools.coco import COCO

from annotator.formats import BoxRecord, ExportMeta, FormatError, ImageRecord, LabelInfo, Prediction, coco
from annotator.formats import csv_multilabel, labelstudio, native, voc, yolo

META = ExportMeta(
    project="Pets",
    labels=(LabelInfo("cat", "#ff0000"), LabelInfo("dog", "#00ff00"), LabelInfo("indoor", "#0000ff")),
    box_labels=("cat", "dog"),
)
IMAGES = [
    ImageRecord(
        11,
        "a.png",
        640,
        480,
        "submitted",
        (BoxRecord("cat", 10.5, 20.0, 100.0, 50.25), BoxRecord("dog", 300.0, 200.0, 340.0, 280.0)),
        ("indoor",),
        (Prediction("dog", 0.91),),
    ),
    ImageRecord(12, "b.jpg", 320, 240, "submitted", (), ("indoor", "cat")),
    ImageRecord(13, "c.png", 100, 100, "unlabeled"),
]


def _bytes(chunks) -> bytes:
    return b"".join(chunks)


def test_it_writes_coco_that_pycocotools_loads_with_the_same_boxes(tmp_path):
    path = tmp_path / "coco.json"
    path.write_bytes(_bytes(coco.write(META, iter(IMAGES), predictions=True)))
    api = COCO(str(path))
    assert [c["name"] for c in api.loadCats(api.getCatIds())] == ["cat", "dog", "indoor"]
    assert sorted(api.getImgIds()) == [11, 12, 13]
    anns = api.loadAnns(api.getAnnIds(imgIds=[11]))
    names = {c["id"]: c["name"] for c in api.dataset["categories"]}
    assert [(names[a["category_id"]], a["bbox"]) for a in anns] == [
        ("cat", [10.5, 20.0, 100.0, 50.25]),
        ("dog", [300.0, 200.0, 340.0, 280.0]),
    ]
    assert anns[0]["area"] == pytest.approx(100.0 * 50.25) and anns[0]["iscrowd"] == 0
    assert len(set(api.getAnnIds())) == 2  # unique annotation ids
    image = api.loadImgs([12])[0]
    assert [names[c] for c in image["image_labels"]] == ["indoor", "cat"]
    assert api.loadImgs([11])[0]["predictions"] == [{"category_id": 2, "score": 0.91}]


def test_it_reads_back_what_it_writes_in_coco():
    parsed = coco.read(_bytes(coco.write(META, iter(IMAGES))))
    assert parsed.labels == ["cat", "dog", "indoor"]
    by_name = {p.file_name: p for p in parsed.images}
    assert by_name["a.png"].boxes == IMAGES[0].boxes and by_name["a.png"].tags == ("indoor",)
    assert by_name["b.jpg"].tags == ("indoor", "cat") and by_name["c.png"].boxes == ()


def test_it_streams_big_coco_exports_in_chunks():
    many = (ImageRecord(i, f"{i}.png", 64, 64, "", (BoxRecord("cat", 1, 1, 5, 5),) * 3) for i in range(1, 20_001))
    chunks = list(coco.write(META, many))
    assert len(chunks) > 10 and max(len(c) for c in chunks) < 1 << 20
    assert len(json.loads(b"".join(chunks))["annotations"]) == 60_000


@pytest.mark.parametrize(
    "doc, message",
    [
        (b"{not json", "not valid JSON"),
        (
            b'{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 2, "category_id": 1}]}',
            "does not list",
        ),
        (
            b'{"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "cat"}],'
            b' "annotations": [{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4]}]}',
            "does not define",
        ),
        (
            b'{"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "cat"}],'
            b' "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, "3"]}]}',
            "four numbers",
        ),
    ],
)
def test_it_refuses_broken_coco_with_a_message(doc, message):
    with pytest.raises(FormatError, match=message):
        coco.read(doc)


def test_it_writes_voc_xml_with_the_fields_the_format_defines():
    archive = zipfile.ZipFile(io.BytesIO(_bytes(voc.write(META, iter(IMAGES)))))
    assert sorted(archive.namelist()) == ["Annotations/a.xml", "Annotations/b.xml", "Annotations/c.xml", "labels.txt"]
    root = ET.fromstring(archive.read("Annotations/a.xml"))
    assert root.tag == "annotation" and root.findtext("filename") == "a.png" and root.findtext("folder")
    size = root.find("size")
    assert (size.findtext("width"), size.findtext("height"), size.findtext("depth")) == ("640", "480", "3")
    assert root.findtext("segmented") == "0"
    objects = root.findall("object")
    assert [o.findtext("name") for o in objects] == ["cat", "dog"]
    for o in objects:
        assert {c.tag for c in o} >= {"name", "pose", "truncated", "difficult", "bndbox"}
    box = objects[1].find("bndbox")
    # 1-based pixel corners: x=300, w=340 covers pixels 301..640.
    assert [int(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")] == [301, 201, 640, 480]
    assert ET.fromstring(archive.read("Annotations/c.xml")).findall("object") == []


def test_it_writes_yolo_labels_normalised_to_the_unit_square():
    archive = zipfile.ZipFile(io.BytesIO(_bytes(yolo.write(META, iter(IMAGES)))))
    data = yaml.safe_load(archive.read("data.yaml"))
    assert data["names"] == {0: "cat", 1: "dog"} and data["nc"] == 2  # box labels only, not "indoor"
    lines = [line.split() for line in archive.read("labels/a.txt").decode().splitlines()]
    assert len(lines) == 2
    for (cls, cx, cy, w, h), box in zip(lines, IMAGES[0].boxes):
        values = [float(v) for v in (cx, cy, w, h)]
        assert all(0 <= v <= 1 for v in values)
        assert data["names"][int(cls)] == box.label
        assert values == pytest.approx(
            [(box.x + box.w / 2) / 640, (box.y + box.h / 2) / 480, box.w / 640, box.h / 480], abs=1e-6
        )
    assert archive.read("labels/b.txt") == b""  # an image without boxes is a negative example


def test_it_reads_yolo_back_into_pixels():
    archive = zipfile.ZipFile(io.BytesIO(_bytes(yolo.write(META, iter(IMAGES)))))
    names = yolo.read_names("data.yaml", archive.read("data.yaml"))
    sizes = {"a": ("a.png", 640, 480)}
    parsed = yolo.read({"a.txt": archive.read("labels/a.txt"), "zzz.txt": b"0 0.5 0.5 0.1 0.1\n"}, names, sizes.get)
    a = next(p for p in parsed.images if p.file_name == "a.png")
    for got, want in zip(a.boxes, IMAGES[0].boxes):
        assert got.label == want.label
        assert (got.x, got.y, got.w, got.h) == pytest.approx((want.x, want.y, want.w, want.h), abs=0.01)
    assert yolo.read_names("classes.txt", b"cat\ndog\n") == ["cat", "dog"]
    with pytest.raises(FormatError, match="line 1"):
        yolo.read({"a.txt": b"5 0.5 0.5 0.1 0.1\n"}, names, sizes.get)


def test_it_writes_csv_one_row_per_image_with_a_column_per_label():
    text = _bytes(csv_multilabel.write(META, iter(IMAGES), predictions=True)).decode()
    frame = pd.read_csv(io.StringIO(text))
    assert list(frame.columns) == [
        "file_name",
        "width",
        "height",
        "cat",
        "dog",
        "indoor",
        "cat_score",
        "dog_score",
        "indoor_score",
    ]
    rows = {r["file_name"]: r for r in csv.DictReader(io.StringIO(text))}
    assert (rows["a.png"]["cat"], rows["a.png"]["dog"], rows["a.png"]["indoor"]) == ("1", "1", "1")
    assert (rows["b.jpg"]["cat"], rows["b.jpg"]["dog"], rows["b.jpg"]["indoor"]) == ("1", "0", "1")
    assert (rows["c.png"]["cat"], rows["c.png"]["dog"], rows["c.png"]["indoor"]) == ("0", "0", "0")
    assert rows["a.png"]["dog_score"] == "0.91" and rows["a.png"]["cat_score"] == ""


def test_it_round_trips_the_native_json():
    doc = json.loads(_bytes(native.write(META, iter(IMAGES), predictions=True)))
    assert doc["format"] == "twinlabel" and [label["name"] for label in doc["labels"]] == ["cat", "dog", "indoor"]
    assert doc["images"][0]["predictions"] == [{"label": "dog", "score": 0.91}]
    parsed = native.read(json.dumps(doc).encode())
    assert [(p.file_name, p.boxes, p.tags) for p in parsed.images] == [(i.file_name, i.boxes, i.tags) for i in IMAGES]


# A Label Studio JSON export as its documentation describes it
# (labelstud.io/guide/export#Label-Studio-JSON-format-of-annotated-tasks): a list of tasks, each
# with data.image (an upload path with Label Studio's 8-hex prefix), annotations[].result[] holding
# rectanglelabels in percent of the image and choices with several values.
LABEL_STUDIO_EXPORT = [
    {
        "id": 1,
        "data": {"image": "/data/upload/1/6f2a1b9c-a.png"},
        "annotations": [
            {
                "id": 101,
                "completed_by": 1,
                "was_cancelled": False,
                "ground_truth": False,
                "result": [
                    {
                        "id": "r1",
                        "type": "rectanglelabels",
                        "from_name": "label",
                        "to_name": "image",
                        "original_width": 640,
                        "original_height": 480,
                        "image_rotation": 0,
                        "value": {
                            "x": 10.0,
                            "y": 25.0,
                            "width": 50.0,
                            "height": 12.5,
                            "rotation": 0,
                            "rectanglelabels": ["cat"],
                        },
                    },
                    {
                        "id": "r2",
                        "type": "choices",
                        "from_name": "scene",
                        "to_name": "image",
                        "value": {"choices": ["indoor", "night"]},
                    },
                    {
                        "id": "r3",
                        "type": "polygonlabels",
                        "from_name": "poly",
                        "to_name": "image",
                        "value": {"points": [[1, 1], [2, 2], [3, 1]], "polygonlabels": ["cat"]},
                    },
                ],
            }
        ],
        "predictions": [],
    },
    {
        "id": 2,
        "data": {"image": "../media/upload/1/b.jpg"},
        "annotations": [
            {"id": 102, "was_cancelled": True, "result": [{"type": "choices", "value": {"choices": ["outdoor"]}}]},
        ],
    },
]


def test_it_reads_a_label_studio_export_converting_percent_to_pixels():
    parsed = labelstudio.read(json.dumps(LABEL_STUDIO_EXPORT).encode(), lambda names: None)
    a, b = parsed.images
    assert a.file_name == "6f2a1b9c-a.png"
    assert a.boxes == (BoxRecord("cat", 64.0, 120.0, 320.0, 60.0),)
    assert a.tags == ("indoor", "night")
    assert b.file_name == "b.jpg" and b.boxes == () and b.tags == ()  # the cancelled annotation is ignored
    assert parsed.skipped_results == 1 and parsed.labels == ["cat", "indoor", "night"]


def test_it_uses_the_image_size_when_label_studio_gives_none_and_encloses_rotated_boxes():
    task = {
        "data": {"image": "x.png"},
        "annotations": [
            {
                "result": [
                    {
                        "type": "rectanglelabels",
                        "value": {
                            "x": 50,
                            "y": 50,
                            "width": 10,
                            "height": 20,
                            "rotation": 90,
                            "rectanglelabels": ["dog"],
                        },
                    }
                ]
            }
        ],
    }
    (image,) = labelstudio.read(json.dumps([task]).encode(), lambda names: (200, 100)).images
    box = image.boxes[0]
    # 90° clockwise around the top-left corner (100, 50): the 20×20 rectangle swings to the left.
    assert (box.x, box.y, box.w, box.h) == pytest.approx((80.0, 50.0, 20.0, 20.0))


def test_voc_reads_back_what_it_writes_and_refuses_entities():
    from annotator.formats import BoxRecord, FormatError, ImageRecord
    from annotator.formats import voc as voc_format

    image = ImageRecord(
        1,
        "a b&c.png",
        200,
        100,
        boxes=(BoxRecord("cat", 10, 20, 30, 40, {"truncated": True}), BoxRecord("dog <x>", 0, 0, 1, 1)),
    )
    parsed = voc_format.read([("Annotations/a.xml", voc_format.image_xml(image)), ("labels.txt", b"cat\n")])
    assert [(p.file_name, p.boxes) for p in parsed.images] == [
        ("a b&c.png", (BoxRecord("cat", 10, 20, 30, 40, {"truncated": True}), BoxRecord("dog <x>", 0, 0, 1, 1)))
    ]
    assert parsed.labels == ["cat", "dog <x>"]
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><annotation><filename>&x;</filename></annotation>'
    with pytest.raises(FormatError, match="DOCTYPE"):
        voc_format.read([("b.xml", bomb)])
    with pytest.raises(FormatError, match="bndbox"):
        voc_format.read(
            [("c.xml", b"<annotation><filename>c.png</filename><object><name>cat</name></object></annotation>")]
        )
    with pytest.raises(FormatError, match="XML files"):
        voc_format.read([("labels.txt", b"cat\n")])
