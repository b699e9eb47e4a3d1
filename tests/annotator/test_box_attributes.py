"""Box attributes (annotator/attributes.py): the rules, the annotation API, the formats out and
back in, and the dashboard's counts."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotator import attributes
from annotator.models import Box, LabelClass
from annotator.services.images import images_import
from annotator.services.labels import label_update
from annotator.sources import ImageSource
from twinlabel.web.dashboard import label_counts
from tests.factories import image_bytes, make_project, make_team

CAR = [
    {"name": "parked", "type": "checkbox"},
    {"name": "colour", "type": "choice", "choices": ["red", "blue"]},
    {"name": "plate", "type": "text"},
]


def test_it_reads_the_one_line_definitions_and_writes_them_back():
    specs = attributes.specs_from_text("Parked; colour: red|blue; plate: text")
    assert specs == CAR
    assert attributes.specs_to_text(specs) == "parked; colour: red|blue; plate: text"


@pytest.mark.parametrize(
    "raw, why",
    [
        ([{"name": "occluded"}], "defined twice"),
        ([{"name": "a"}, {"name": "A"}], "defined twice"),
        ([{"name": "c", "type": "choice", "choices": ["one"]}], "2 to"),
        ([{"name": "x", "type": "slider"}], "use one of"),
        ([{"name": ""}], "needs a name"),
    ],
)
def test_it_refuses_bad_definitions_with_a_reason(raw, why):
    with pytest.raises(ValidationError, match=why):
        attributes.specs_clean(raw)


def test_a_box_keeps_only_what_is_set_and_refuses_what_its_label_does_not_define():
    raw = {"occluded": True, "truncated": False, "parked": True, "colour": "red", "plate": ""}
    assert attributes.values_clean(raw, CAR) == {"occluded": True, "parked": True, "colour": "red"}
    for bad, why in [
        ({"colour": "green"}, "not one of"),
        ({"wheels": True}, "no attribute"),
        ({"difficult": "yes"}, "true or false"),
    ]:
        with pytest.raises(ValidationError, match=why):
            attributes.values_clean(bad, CAR)
    # Imports from other tools: what the label does not define is dropped, 0/1 flags are read.
    assert attributes.values_clean({"wheels": 4, "difficult": 1, "colour": "green"}, CAR, strict=False) == {
        "difficult": True
    }


@pytest.fixture
def team(db):
    team = make_team(labels=("car", "dog"))
    car = team.labels["car"]
    label_update(label=car, name="car", color=car.color, hotkey=car.hotkey, attributes=CAR)
    source = ImageSource("a.png", lambda: image_bytes(200, 100))
    team.ids = [images_import(project=team.project, sources=[source]).imported[0].image_id]
    return team


def _put(client, image_id, boxes, version=1):
    return client.put(
        reverse("api_image_annotations", args=[image_id]),
        json.dumps({"version": version, "tags": [], "boxes": boxes}),
        content_type="application/json",
    )


def _save_attributed(client, team):
    client.force_login(team.annotator)
    boxes = [
        {
            "label": team.labels["car"].id,
            "x": 10,
            "y": 10,
            "w": 50,
            "h": 30,
            "attributes": {"occluded": True, "difficult": True, "colour": "blue", "plate": "AB 12"},
        },
        {"label": team.labels["car"].id, "x": 100, "y": 10, "w": 50, "h": 30},
    ]
    response = _put(client, team.ids[0], boxes)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_annotation_api_stores_and_returns_attributes_with_the_version(client, team):
    state = _save_attributed(client, team)
    assert [b["attributes"] for b in state["boxes"]] == [
        {"occluded": True, "difficult": True, "colour": "blue", "plate": "AB 12"},
        {},
    ]
    assert state["image"]["version"] == 2
    stale = _put(client, team.ids[0], [], version=1)
    assert stale.status_code == 409
    bad = _put(
        client,
        team.ids[0],
        [{"label": team.labels["car"].id, "x": 1, "y": 1, "w": 5, "h": 5, "attributes": {"colour": "green"}}],
        version=2,
    )
    assert bad.status_code == 400 and "not one of the choices" in bad.content.decode()
    labels = client.get(reverse("api_project_labels", args=[team.project.id])).json()["results"]
    assert next(label for label in labels if label["name"] == "car")["attributes"] == CAR


def _export(client, project, fmt) -> bytes:
    response = client.get(reverse("api_project_export", args=[project.id]), {"format": fmt})
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_coco_voc_and_native_json_carry_the_attributes_and_coco_and_json_bring_them_back(client, team):
    state = _save_attributed(client, team)
    # Exports hold submitted images by default (issue 14), and a re-import takes submitted images only.
    submitted = client.post(
        reverse("api_image_submit", args=[team.ids[0]]),
        json.dumps({"version": state["image"]["version"]}),
        content_type="application/json",
    )
    assert submitted.status_code == 200, submitted.content
    client.force_login(team.owner)
    coco = json.loads(_export(client, team.project, "coco"))
    assert [a.get("attributes") for a in coco["annotations"]] == [
        {"occluded": True, "difficult": True, "colour": "blue", "plate": "AB 12"},
        None,
    ]
    voc = zipfile.ZipFile(io.BytesIO(_export(client, team.project, "voc"))).read("Annotations/a.xml").decode()
    first, second = voc.split("</object>")[:2]
    assert "<truncated>0</truncated><difficult>1</difficult><occluded>1</occluded>" in first
    assert "<truncated>0</truncated><difficult>0</difficult><occluded>0</occluded>" in second
    native = _export(client, team.project, "json")
    voc_zip = _export(client, team.project, "voc")
    for fmt, data in [("coco", json.dumps(coco).encode()), ("json", native), ("voc", voc_zip)]:
        Box.objects.all().delete()
        name = "x.zip" if fmt == "voc" else f"x.{fmt}"
        response = client.post(
            reverse("api_project_import", args=[team.project.id]),
            {"format": fmt, "files": [SimpleUploadedFile(name, data)]},
        )
        assert response.status_code == 200, response.content
        # VOC carries the three standard flags only, and integer corners (the boxes are whole pixels here).
        first = (
            {"occluded": True, "difficult": True}
            if fmt == "voc"
            else {"occluded": True, "difficult": True, "colour": "blue", "plate": "AB 12"}
        )
        assert list(Box.objects.order_by("x").values_list("attributes", flat=True)) == [first, {}], fmt
        assert list(Box.objects.order_by("x").values_list("x", "y", "w", "h")) == [
            (10, 10, 50, 30),
            (100, 10, 50, 30),
        ], fmt


def test_a_json_export_brings_a_labels_attribute_definitions_into_another_project(client, team):
    state = _save_attributed(client, team)
    client.post(
        reverse("api_image_submit", args=[team.ids[0]]),
        json.dumps({"version": state["image"]["version"]}),
        content_type="application/json",
    )
    client.force_login(team.owner)
    native = _export(client, team.project, "json")
    assert json.loads(native)["labels"][0] == {"name": "car", "color": team.labels["car"].color, "attributes": CAR}
    other = make_project(owner=team.owner, labels=("dog",), name="Elsewhere")
    images_import(project=other, sources=[ImageSource("a.png", lambda: image_bytes(200, 100))])
    response = client.post(
        reverse("api_project_import", args=[other.id]),
        {"format": "json", "files": [SimpleUploadedFile("x.json", native)]},
    )
    assert response.status_code == 200, response.content
    assert LabelClass.objects.get(project=other, name="car").attributes == CAR
    assert list(Box.objects.filter(image__project=other).order_by("x").values_list("attributes", flat=True)) == [
        {"occluded": True, "difficult": True, "colour": "blue", "plate": "AB 12"},
        {},
    ]


def test_the_dashboard_counts_boxes_by_attribute(client, team):
    _save_attributed(client, team)
    counts = {row["label"]: row for row in label_counts(project_id=team.project.id, probe_run_id=None)}
    car = counts[team.labels["car"].id]
    assert (car["boxes"], car["occluded"], car["difficult"], car["truncated"], car["with_attributes"]) == (
        2,
        1,
        1,
        0,
        1,
    )


def test_the_project_page_edits_a_labels_attributes_in_one_line(client, team):
    client.force_login(team.owner)
    url = reverse("label_edit", args=[team.project.id, team.labels["car"].id])
    client.post(url, {"name": "car", "color": "#123456", "hotkey": "1", "attributes": "moving; lights: on|off"})
    team.labels["car"].refresh_from_db()
    assert team.labels["car"].attributes == [
        {"name": "moving", "type": "checkbox"},
        {"name": "lights", "type": "choice", "choices": ["on", "off"]},
    ]
    page = client.get(reverse("project_detail", args=[team.project.id])).content.decode()
    assert 'value="moving; lights: on|off"' in page
    refused = client.post(url, {"name": "car", "color": "#123456", "hotkey": "1", "attributes": "a: x"}, follow=True)
    assert "2 to 30 different values" in refused.content.decode()
