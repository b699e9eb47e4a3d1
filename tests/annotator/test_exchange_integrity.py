"""Nothing silently wrong in an export or a re-import (issue 14 items 2, 3 and 6): images that share a
file name are matched by sha256 or refused, the default export holds submitted images only, and
probabilities keep their full precision."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotator.models import Box, Image, ImageStatus
from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun
from tests.factories import image_bytes, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return make_user("owner")


@pytest.fixture
def project(owner):
    return make_project(owner=owner, labels=("cat", "dog"))


def _upload(client, project, *files):
    return client.post(
        reverse("api_project_images", args=[project.id]),
        {"files": [SimpleUploadedFile(name, data) for name, data in files]},
    )


def _export(client, project, **params) -> bytes:
    response = client.get(reverse("api_project_export", args=[project.id]), params)
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def _import(client, project, fmt, name, data):
    return client.post(
        reverse("api_project_import", args=[project.id]), {"format": fmt, "files": [SimpleUploadedFile(name, data)]}
    )


@pytest.fixture
def twins(client, owner, project):
    """The issue's scenario: two different images, both called 000000.png; only the second is boxed."""
    client.force_login(owner)
    first = _upload(client, project, ("000000.png", image_bytes(64, 48, color=(10, 20, 30)))).json()
    second = _upload(client, project, ("000000.png", image_bytes(64, 48, color=(200, 20, 30)))).json()
    first_id, second_id = first["imported"][0]["id"], second["imported"][0]["id"]
    cat = project.labels.get(name="cat")
    url = reverse("api_image_annotations", args=[second_id])
    saved = client.put(
        url,
        {"version": 1, "boxes": [{"label": cat.id, "x": 1, "y": 2, "w": 20, "h": 10}], "tags": []},
        content_type="application/json",
    )
    assert saved.status_code == 200, saved.content
    submitted = client.post(
        reverse("api_image_submit", args=[second_id]),
        {"version": saved.json()["image"]["version"]},
        content_type="application/json",
    )
    assert submitted.status_code == 200, submitted.content
    return first, second, first_id, second_id


def test_an_upload_reports_a_name_another_image_has(twins):
    first, second, first_id, second_id = twins
    assert first["same_name"] == []
    assert second["same_name"] == [{"name": "000000.png", "id": second_id}]


@pytest.mark.parametrize("fmt", ["coco", "json"])
def test_a_re_import_of_the_export_changes_only_the_boxed_image(client, project, twins, fmt):
    _, _, first_id, second_id = twins
    exported = _export(client, project, format=fmt)
    Box.objects.all().delete()  # so that the import has something to put back
    report = _import(client, project, fmt, f"x.{fmt}", exported)
    assert report.status_code == 200, report.content
    assert report.json()["images"] == 1 and report.json()["unmatched"] == []
    first, second = Image.objects.get(pk=first_id), Image.objects.get(pk=second_id)
    assert first.status == ImageStatus.UNLABELED and not first.boxes.exists()
    assert second.status == ImageStatus.SUBMITTED and second.boxes.count() == 1


@pytest.mark.parametrize("fmt", ["coco", "json"])
def test_every_image_exported_marks_its_status_and_imports_without_new_negatives(client, project, twins, fmt):
    _, _, first_id, second_id = twins
    exported = _export(client, project, format=fmt, status="all")
    doc = json.loads(exported)
    assert sorted((i["status"], i["sha256"][:8]) for i in doc["images"]) == sorted(
        (s, h[:8]) for s, h in Image.objects.values_list("status", "sha256")
    )
    report = _import(client, project, fmt, f"x.{fmt}", exported).json()
    assert report["images"] == 1 and report["not_submitted"] == 1
    assert Image.objects.get(pk=first_id).status == ImageStatus.UNLABELED


def test_a_file_without_sha256_naming_a_shared_name_is_refused_with_the_name(client, project, twins):
    _, _, first_id, _ = twins
    coco = {
        "images": [{"id": 1, "file_name": "000000.png", "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "dog"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}],
    }
    before = sorted(Box.objects.values_list("image_id", "label_id"))
    response = _import(client, project, "coco", "foreign.json", json.dumps(coco).encode())
    assert response.status_code == 400 and "000000.png" in response.json()["error"]
    assert sorted(Box.objects.values_list("image_id", "label_id")) == before
    assert Image.objects.get(pk=first_id).status == ImageStatus.UNLABELED


def test_yolo_label_files_for_a_shared_stem_are_refused(client, project, twins):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("data.yaml", "names: [cat]\n")
        z.writestr("labels/000000.txt", "0 0.5 0.5 0.1 0.1\n")
    response = _import(client, project, "yolo", "y.zip", archive.getvalue())
    assert response.status_code == 400 and "000000" in response.json()["error"]


def test_the_default_export_holds_submitted_images_only(client, project, twins):
    _, _, _, second_id = twins
    coco = json.loads(_export(client, project, format="coco"))
    assert [i["id"] for i in coco["images"]] == [second_id]
    with zipfile.ZipFile(io.BytesIO(_export(client, project, format="yolo"))) as z:
        assert sorted(n for n in z.namelist() if n.startswith("labels/")) == ["labels/000000.txt"]
    rows = list(csv.reader(io.StringIO(_export(client, project, format="csv").decode())))
    assert len(rows) == 2  # the header and the submitted image
    assert len(json.loads(_export(client, project, format="coco", status="all"))["images"]) == 2


def test_probabilities_keep_full_float32_precision(client, owner, project, twins):
    first, _, first_id, _ = twins
    cat = project.labels.get(name="cat")
    p = float(np.float32(0.123456789))  # what the probe writes: float32, stored as a double
    run = TrainingRun.objects.create(project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=project, probe_run=run)
    Suggestion.objects.create(run=run, image_id=first_id, label=cat, probability=p, predicted=True)
    page = client.get(reverse("api_project_suggestions", args=[project.id])).json()
    assert page["results"][0]["probability"] == p
    state = client.get(reverse("api_image_annotations", args=[first_id])).json()
    assert [s["probability"] for s in state["suggestions"]] == [p]
    coco = json.loads(_export(client, project, format="coco", status="all", predictions=0))
    assert [x["score"] for i in coco["images"] for x in i["predictions"]] == [p]
    native = json.loads(_export(client, project, format="json", status="all", predictions=0))
    assert [x["score"] for i in native["images"] for x in i["predictions"]] == [p]
    rows = list(
        csv.DictReader(io.StringIO(_export(client, project, format="csv", status="all", predictions=0).decode()))
    )
    assert [float(r["cat_score"]) for r in rows if r["cat_score"]] == [p]


def test_a_yolo_export_with_images_is_a_dataset_as_it_is(client, project, twins, tmp_path):
    import yaml

    first_id = twins[2]
    Image.objects.filter(pk=first_id).update(original_name="other.png")  # two stems, one per image
    data = _export(client, project, format="yolo", images=1, status="all")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        z.extractall(tmp_path)
    config = yaml.safe_load((tmp_path / "data.yaml").read_text())
    image_dir = tmp_path / config["path"] / config["train"]
    images = sorted(p.name for p in image_dir.iterdir())
    assert images == ["000000.png", "other.png"] and config["val"] == config["train"]
    # Ultralytics finds an image's labels by replacing /images/ with /labels/ and the suffix with .txt.
    for name in images:
        label = Path(str(image_dir / name).replace("/images/", "/labels/")).with_suffix(".txt")
        assert label.exists(), label
    from PIL import Image as PILImage

    assert PILImage.open(image_dir / "000000.png").size == (64, 48)
    assert config["names"] == {0: "cat"} and config["nc"] == 1
    assert (tmp_path / "labels" / "000000.txt").read_text().startswith("0 ")


def test_a_yolo_export_without_images_says_where_they_go(client, project, twins):
    with zipfile.ZipFile(io.BytesIO(_export(client, project, format="yolo"))) as z:
        assert not any(n.startswith("images/") for n in z.namelist())
        assert "put them in images/" in z.read("data.yaml").decode()
    bad = client.get(reverse("api_project_export", args=[project.id]), {"format": "coco", "images": 1})
    assert bad.status_code == 400 and "YOLO" in bad.json()["error"]
