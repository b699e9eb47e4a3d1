"""Import and export through the API: real readers (pycocotools, zipfile, pandas), round trips,
atomic imports, access, and background export jobs."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import yaml
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pycocotools.coco import COCO

from annotator.exports import export_job_run
from annotator.models import Box, ExportJob, Image, ImageTag, LabelClass
from tests.annotator.formats.test_formats import LABEL_STUDIO_EXPORT
from tests.factories import image_bytes, make_project
from annotator.services.images import images_import
from annotator.sources import ImageSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(team):
    sources = [
        ImageSource(name, lambda i=i, w=w, h=h: image_bytes(w, h, color=(i, 40, 90)))
        for i, (name, w, h) in enumerate([("a.png", 640, 480), ("b.jpg", 320, 240), ("c.png", 100, 100)])
    ]
    images_import(project=team.project, sources=sources)
    return team


def _as(client, user):
    client.force_login(user)
    return client


def _import(client, project, fmt, *files):
    uploads = [SimpleUploadedFile(name, data) for name, data in files]
    return client.post(reverse("api_project_import", args=[project.id]), {"format": fmt, "files": uploads})


def _export(client, project, **params) -> bytes:
    response = client.get(reverse("api_project_export", args=[project.id]), params)
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


COCO_IN = {
    "images": [
        {"id": 1, "file_name": "images/a.png", "width": 640, "height": 480},
        {"id": 2, "file_name": "b.jpg", "width": 320, "height": 240},
        {"id": 3, "file_name": "missing.png", "width": 10, "height": 10},
    ],
    "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "indoor"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10.5, 20, 100, 50.25], "area": 5025, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [300, 200, 340, 280], "area": 1, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 3},  # no bbox: an image-level label
    ],
}


def _coco_boxes(api: COCO) -> dict:
    names = {c["id"]: c["name"] for c in api.dataset["categories"]}
    files = {i["id"]: i["file_name"] for i in api.dataset["images"]}
    out = {}
    for a in api.dataset["annotations"]:
        out.setdefault(files[a["image_id"]], []).append((names[a["category_id"]], [round(v, 3) for v in a["bbox"]]))
    return out


def test_it_round_trips_coco_import_then_export_with_the_same_boxes_and_labels(client, team, tmp_path):
    c = _as(client, team.owner)
    response = _import(c, team.project, "coco", ("in.json", json.dumps(COCO_IN).encode()))
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["images"] == 2 and report["boxes"] == 2 and report["tags"] == 1
    assert report["unmatched"] == ["missing.png"] and report["labels_created"] == ["indoor"]
    path = tmp_path / "out.json"
    path.write_bytes(_export(c, team.project, format="coco"))
    api = COCO(str(path))
    assert _coco_boxes(api) == {"a.png": [("cat", [10.5, 20.0, 100.0, 50.25]), ("dog", [300.0, 200.0, 340.0, 280.0])]}
    names = {c["id"]: c["name"] for c in api.dataset["categories"]}
    b = next(i for i in api.dataset["images"] if i["file_name"] == "b.jpg")
    assert [names[c] for c in b["image_labels"]] == ["indoor"]
    # ... and the export imports again to the same state.
    before = sorted(Box.objects.values_list("image_id", "label_id", "x", "y", "w", "h"))
    assert _import(c, team.project, "coco", ("again.json", path.read_bytes())).status_code == 200
    assert sorted(Box.objects.values_list("image_id", "label_id", "x", "y", "w", "h")) == before


@pytest.mark.parametrize(
    "broken",
    [
        b"{not json",
        # The second box lies outside its 320x240 image: the first, valid one must not be stored either.
        json.dumps(
            {
                **COCO_IN,
                "annotations": COCO_IN["annotations"][:1]
                + [{"id": 9, "image_id": 2, "category_id": 1, "bbox": [500, 500, 10, 10]}],
            }
        ).encode(),
        # A new label ("indoor") would be created before the bad box is found: it must not stay.
        json.dumps(
            {
                **COCO_IN,
                "annotations": COCO_IN["annotations"][2:]
                + [{"id": 9, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 0]}],
            }
        ).encode(),
    ],
)
def test_a_bad_file_changes_nothing(client, team, broken):
    c = _as(client, team.owner)
    response = _import(c, team.project, "coco", ("bad.json", broken))
    assert response.status_code == 400 and response.json()["error"]
    assert Box.objects.count() == 0 and ImageTag.objects.count() == 0
    assert sorted(LabelClass.objects.values_list("name", flat=True)) == ["cat", "dog"]
    assert set(Image.objects.values_list("status", flat=True)) == {"unlabeled"}
    assert set(Image.objects.values_list("version", flat=True)) == {1}


def test_it_imports_a_label_studio_export_in_pixels(client, team):
    c = _as(client, team.owner)
    response = _import(c, team.project, "labelstudio", ("ls.json", json.dumps(LABEL_STUDIO_EXPORT).encode()))
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["images"] == 2 and report["unmatched"] == [] and report["skipped_results"] == 1
    assert report["labels_created"] == ["indoor", "night"]
    a = Image.objects.get(pk=team.image_id("a.png"))  # uploaded as "6f2a1b9c-a.png" in Label Studio
    assert list(a.boxes.values_list("label__name", "x", "y", "w", "h")) == [("cat", 64.0, 120.0, 320.0, 60.0)]
    assert sorted(a.tags.values_list("label__name", flat=True)) == ["indoor", "night"]
    assert a.status == "submitted"


def test_it_imports_yolo_label_files_with_their_class_names(client, team):
    c = _as(client, team.owner)
    names = b"names:\n  0: dog\n  1: cat\n"
    response = _import(
        c,
        team.project,
        "yolo",
        ("data.yaml", names),
        ("a.txt", b"1 0.5 0.5 0.25 0.5\n0 0.1 0.1 0.2 0.2\n"),
        ("nope.txt", b"0 0.5 0.5 0.1 0.1\n"),
    )
    assert response.status_code == 200, response.content
    assert response.json()["unmatched"] == ["nope.txt"]
    boxes = list(Box.objects.order_by("id").values_list("label__name", "x", "y", "w", "h"))
    assert boxes == [("cat", 240.0, 120.0, 160.0, 240.0), ("dog", pytest.approx(0.0, abs=1e-9), 0.0, 128.0, 96.0)]


def test_it_imports_a_yolo_zip_and_refuses_one_without_names(client, team):
    c = _as(client, team.owner)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("labels/b.txt", "0 0.5 0.5 0.5 0.5\n")
    bad = _import(c, team.project, "yolo", ("y.zip", buffer.getvalue()))
    assert bad.status_code == 400 and "class names" in bad.json()["error"]
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("classes.txt", "cat\n")
    assert _import(c, team.project, "yolo", ("y.zip", buffer.getvalue())).json()["boxes"] == 1


def _annotate(team):
    project = team.project
    cat, dog = project.labels.order_by("id")
    a, b = team.image_id("a.png"), team.image_id("b.jpg")
    Box.objects.create(image_id=a, label=cat, x=10, y=20, w=100, h=50)
    Box.objects.create(image_id=a, label=cat, x=0, y=0, w=640, h=480)
    ImageTag.objects.create(image_id=b, label=dog)
    return cat, dog


def test_it_exports_voc_yolo_and_csv_that_their_readers_open(client, team):
    _annotate(team)
    c = _as(client, team.owner)  # exports are admin-only (issue 14 item 10)
    voc = zipfile.ZipFile(io.BytesIO(_export(c, team.project, format="voc", status="all")))
    assert sorted(voc.namelist()) == ["Annotations/a.xml", "Annotations/b.xml", "Annotations/c.xml", "labels.txt"]
    yolo = zipfile.ZipFile(io.BytesIO(_export(c, team.project, format="yolo", status="all")))
    assert b'0: "cat"' in yolo.read("data.yaml") and b"dog" not in yolo.read("data.yaml")
    assert yolo.read("labels/a.txt").decode().splitlines()[1] == "0 0.500000 0.500000 1.000000 1.000000"
    frame = pd.read_csv(io.BytesIO(_export(c, team.project, format="csv", status="all")))
    assert list(frame.columns) == ["file_name", "width", "height", "cat", "dog"]
    assert frame.set_index("file_name")[["cat", "dog"]].to_dict("index") == {
        "a.png": {"cat": 1, "dog": 0},
        "b.jpg": {"cat": 0, "dog": 1},
        "c.png": {"cat": 0, "dog": 0},
    }


def test_the_native_json_export_imports_into_another_project(client, team):
    from django.utils import timezone

    _annotate(team)
    # Submitted: what the default export holds (issue 14 item 3), and what an import takes.
    Image.objects.filter(pk__in=[team.image_id("a.png"), team.image_id("b.jpg")]).update(
        status="submitted", submitted_at=timezone.now()
    )
    c = _as(client, team.owner)
    data = _export(c, team.project, format="json")
    other = make_project(owner=team.owner, labels=(), name="Copy")
    images_import(project=other, sources=[ImageSource("a.png", lambda: image_bytes(640, 480, color=(0, 40, 90)))])
    report = _import(c, other, "json", ("t.json", data)).json()
    assert report["images"] == 1 and sorted(report["unmatched"]) == ["b.jpg"]
    assert report["labels_created"] == ["cat", "dog"]
    image = other.images.get()
    assert sorted(image.boxes.values_list("label__name", "x", "y", "w", "h")) == [
        ("cat", 0.0, 0.0, 640.0, 480.0),
        ("cat", 10.0, 20.0, 100.0, 50.0),
    ]


def test_it_exports_suggestions_above_a_threshold_as_predictions(client, team):
    from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun

    cat, dog = team.project.labels.order_by("id")
    run = TrainingRun.objects.create(project=team.project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=team.project, probe_run=run)
    c_id = team.image_id("c.png")
    Suggestion.objects.create(run=run, image_id=c_id, label=cat, probability=0.8, predicted=True)
    Suggestion.objects.create(run=run, image_id=c_id, label=dog, probability=0.2, predicted=False)
    doc = json.loads(_export(_as(client, team.owner), team.project, format="coco", status="all", predictions="0.5"))
    image = next(i for i in doc["images"] if i["id"] == c_id)
    assert image["predictions"] == [{"category_id": 1, "score": 0.8}]
    assert "predictions" not in json.loads(_export(client, team.project, format="coco", status="all"))["images"][0]


def test_export_and_import_access(client, team):
    project = team.project
    url = reverse("api_project_export", args=[project.id])
    assert _as(client, team.annotator).get(url, {"format": "csv"}).status_code == 403  # admin-only (issue 14)
    assert _as(client, team.owner).get(url, {"format": "csv"}).status_code == 200
    assert _as(client, team.outsider).get(url, {"format": "csv"}).status_code == 404
    assert _as(client, team.owner).get(url, {"format": "xls"}).status_code == 400
    coco = ("in.json", json.dumps(COCO_IN).encode())
    assert _import(_as(client, team.annotator), project, "coco", coco).status_code == 403
    assert _import(_as(client, team.outsider), project, "coco", coco).status_code == 404
    assert Box.objects.count() == 0
    client.logout()
    assert client.get(url, {"format": "csv"}).status_code == 401


def test_a_big_export_runs_as_a_job_and_ends_as_a_permission_checked_download(
    client, team, settings, django_capture_on_commit_callbacks
):
    from unittest import mock

    _annotate(team)
    settings.EXPORT_STREAM_MAX_IMAGES = 2
    c = _as(client, team.owner)  # exports are admin-only (issue 14 item 10)
    with mock.patch("annotator.tasks.export_run.delay") as delay, django_capture_on_commit_callbacks(execute=True):
        response = c.get(reverse("api_project_export", args=[team.project.id]), {"format": "coco", "status": "all"})
    assert response.status_code == 202
    job = response.json()
    delay.assert_called_once_with(job["id"])
    assert job["status"] == "queued" and job["download"] is None
    export_job_run(job_id=job["id"])
    export_job_run(job_id=job["id"])  # a second delivery finds the job taken and does nothing
    done = c.get(job["url"]).json()
    assert done["status"] == "succeeded" and done["size_bytes"] > 0
    download = c.get(done["download"])
    assert download.status_code == 200
    doc = json.loads(b"".join(download.streaming_content))
    assert len(doc["images"]) == 3 and len(doc["annotations"]) == 2
    assert _as(client, team.outsider).get(done["download"]).status_code == 404
    assert ExportJob.objects.get().file.name.startswith(f"exports/{team.project.id}/")


def test_an_export_that_fills_the_disk_fails_saying_so(client, team, settings):
    import errno
    from unittest import mock

    from django.core.files.storage import default_storage

    _annotate(team)
    job = ExportJob.objects.create(project=team.project, options={"format": "coco", "status": "all"})
    full = OSError(errno.ENOSPC, "No space left on device")
    with mock.patch.object(default_storage, "save", side_effect=full), pytest.raises(OSError):
        export_job_run(job_id=job.id)
    done = _as(client, team.owner).get(reverse("api_export_job", args=[job.id])).json()
    assert done["status"] == "failed" and done["download"] is None
    assert done["error"].startswith("The server's disk is full: the export could not be written.")


def test_the_commands_import_and_export_the_same_files(team, tmp_path):
    from django.core.management import CommandError, call_command

    source = tmp_path / "in.json"
    source.write_text(json.dumps(COCO_IN))
    out = io.StringIO()
    call_command("import_annotations", team.project.id, str(source), format="coco", user="owner", stdout=out)
    assert json.loads(out.getvalue())["unmatched"] == ["missing.png"]
    target = tmp_path / "out.json"
    call_command("export", team.project.id, format="coco", output=str(target), stderr=io.StringIO())
    assert _coco_boxes(COCO(str(target)))["a.png"][0] == ("cat", [10.5, 20.0, 100.0, 50.25])
    source.write_text("{broken")
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_annotations", team.project.id, str(source), format="coco")


def test_the_project_page_links_the_exports_and_offers_admins_the_import_form(client, team):
    page = _as(client, team.owner).get(reverse("project_detail", args=[team.project.id]))
    export = reverse("api_project_export", args=[team.project.id])
    assert f"{export}?format=coco".encode() in page.content
    assert reverse("api_project_import", args=[team.project.id]).encode() in page.content
    page = _as(client, team.annotator).get(reverse("project_detail", args=[team.project.id]))
    assert export.encode() not in page.content  # exports are admin-only (issue 14 item 10)
    assert reverse("api_project_import", args=[team.project.id]).encode() not in page.content
    # The form posts like a browser: the session, the CSRF field, multipart.
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(team.owner)
    form = browser.get(reverse("project_detail", args=[team.project.id]))
    token = form.content.split(b'name="csrfmiddlewaretoken" value="')[1].split(b'"')[0].decode()
    answer = browser.post(
        reverse("api_project_import", args=[team.project.id]),
        {
            "format": "coco",
            "csrfmiddlewaretoken": token,
            "files": [SimpleUploadedFile("in.json", json.dumps(COCO_IN).encode())],
        },
        HTTP_ACCEPT="application/json",
    )
    assert answer.status_code == 200 and answer.json()["boxes"] == 2


def test_it_exports_the_detectors_boxes_in_cocos_results_format_and_in_the_json(client, team):
    from labeling.models import BoxSuggestion, ProjectModelState, RunKind, RunStatus, TrainingRun

    cat, dog = team.project.labels.order_by("id")
    run = TrainingRun.objects.create(project=team.project, kind=RunKind.DETECTOR, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=team.project, detector_run=run)
    c_id = team.image_id("c.png")
    BoxSuggestion.objects.create(run=run, image_id=c_id, label=dog, x=1, y=2, w=3, h=4, score=0.75, predicted=True)
    BoxSuggestion.objects.create(run=run, image_id=c_id, label=cat, x=5, y=5, w=5, h=5, score=0.3, predicted=False)
    owner = _as(client, team.owner)
    results = json.loads(_export(owner, team.project, format="coco_results", status="all", predictions="0.5"))
    assert results == [{"image_id": c_id, "category_id": 2, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.75}]
    # The ids are the COCO export's: COCO's own reader scores the results against it.
    coco = COCO()
    coco.dataset = json.loads(_export(owner, team.project, format="coco", status="all"))
    coco.createIndex()
    loaded = coco.loadRes(results)
    assert loaded.anns[1]["category_id"] == 2 and loaded.anns[1]["image_id"] == c_id
    doc = json.loads(_export(owner, team.project, format="json", status="all", predictions="0"))
    image = next(i for i in doc["images"] if i["sha256"] == Image.objects.get(pk=c_id).sha256)
    assert [(b["label"], b["score"]) for b in image["box_predictions"]] == [("dog", 0.75), ("cat", 0.3)]
    refused = owner.get(reverse("api_project_export", args=[team.project.id]), {"format": "coco_results"})
    assert refused.status_code == 400 and "predictions" in refused.json()["error"]


def test_yolo_with_predictions_adds_the_detectors_boxes_with_a_confidence_column(client, team):
    from annotator.formats.predictions import read_yolo
    from labeling.models import BoxSuggestion, ProjectModelState, RunKind, RunStatus, TrainingRun

    cat, dog = team.project.labels.order_by("id")
    run = TrainingRun.objects.create(project=team.project, kind=RunKind.DETECTOR, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=team.project, detector_run=run)
    c_id = team.image_id("c.png")
    c = Image.objects.get(pk=c_id)
    BoxSuggestion.objects.create(run=run, image_id=c_id, label=dog, x=10, y=20, w=30, h=40, score=0.75, predicted=True)
    BoxSuggestion.objects.create(run=run, image_id=c_id, label=cat, x=5, y=5, w=5, h=5, score=0.3, predicted=False)
    Box.objects.create(image_id=team.image_id("a.png"), label=dog, x=1, y=1, w=5, h=5)  # dog is a box class
    owner = _as(client, team.owner)
    plain = zipfile.ZipFile(io.BytesIO(_export(owner, team.project, format="yolo", status="all")))
    assert not [n for n in plain.namelist() if n.startswith("predictions/")]
    archive = zipfile.ZipFile(io.BytesIO(_export(owner, team.project, format="yolo", status="all", predictions="0.5")))
    names = list(yaml.safe_load(archive.read("data.yaml"))["names"].values())
    # The boxed classes keep their ids (labels/ is unchanged); the suggested ones follow.
    boxed = list((yaml.safe_load(plain.read("data.yaml"))["names"] or {}).values())
    assert boxed == ["dog"] and names == ["dog", "cat"]
    stem = c.original_name.rsplit(".", 1)[0]
    line = archive.read(f"predictions/{stem}.txt").decode().split()
    assert names[int(line[0])] == "dog" and len(line) == 6 and float(line[5]) == pytest.approx(0.75)
    cx, cy, w, h = map(float, line[1:5])
    assert (cx * c.width, cy * c.height, w * c.width, h * c.height) == pytest.approx((25, 40, 30, 40), abs=1e-3)
    assert [n for n in archive.namelist() if n.startswith("predictions/")] == [f"predictions/{stem}.txt"]
    # Twinlabel's own prediction import (an external run) reads them back as they were.
    parsed = read_yolo(
        [("data.yaml", archive.read("data.yaml")), (f"{stem}.txt", archive.read(f"predictions/{stem}.txt"))]
    )
    (box,) = parsed.images[0].boxes
    assert box.label == "dog" and box.score == pytest.approx(0.75)
