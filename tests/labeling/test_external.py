"""External predictions: matched, judged on the submitted images by the same trust code as the
probe, stored as an external run whose suggestions people accept or reject; all or nothing."""

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotator.models import Image
from annotator.services.annotations import ImageAnnotations, annotations_import
from labeling.external import predictions_import
from labeling.models import ProjectModelState, RunKind, Suggestion, TrainingRun
from labeling.runs import current_probe_run_id

pytestmark = pytest.mark.team(images=30)

LABELED = 20  # the first 20 images are submitted: cat on the even ones, never dog


@pytest.fixture
def labeled(team):
    annotations_import(
        project=team.project,
        user=team.owner,
        items=[
            ImageAnnotations(i, tag_label_ids=(team.cat.id,) if n % 2 == 0 else ())
            for n, i in enumerate(team.ids[:LABELED])
        ],
    )
    return team


def _doc(team, cat_score, version="resnet-7"):
    """Every image scored: cat by ``cat_score(n)`` for the n-th image, dog 0.5."""
    return {
        "model_version": version,
        "predictions": [{"image_id": i, "tags": {"cat": cat_score(n), "dog": 0.5}} for n, i in enumerate(team.ids)],
    }


def _import(team, doc, **kw):
    return predictions_import(
        project=team.project, user=team.owner, fmt="json", files=[("p.json", json.dumps(doc).encode())], **kw
    )


def test_it_stores_an_external_run_with_suggestions_for_the_unsubmitted_images_only(labeled):
    good = lambda n: 0.95 if n % 2 == 0 else 0.05  # noqa: E731  (right on every image)
    report = _import(labeled, _doc(labeled, good))
    run = TrainingRun.objects.get(pk=report.run_id)
    assert run.kind == RunKind.EXTERNAL and run.status == "succeeded" and run.config["model_version"] == "resnet-7"
    assert report.images == 30 and report.evaluated_images == LABELED and report.unmatched_count == 0
    rows = Suggestion.objects.filter(run=run)
    assert rows.count() == report.suggestions == 10 * 2
    assert set(rows.values_list("image_id", flat=True)) == set(labeled.ids[LABELED:])
    assert current_probe_run_id(project_id=labeled.project.id) == run.id and report.activated


def test_a_model_right_on_the_submitted_images_is_trusted_at_the_precision_target(labeled):
    good = lambda n: 0.95 if n % 2 == 0 else 0.05  # noqa: E731
    report = _import(labeled, _doc(labeled, good))
    run = TrainingRun.objects.get(pk=report.run_id)
    cat = next(e for e in run.metrics["trust"]["labels"] if e["label"] == "cat")
    # The same thresholds as the probe's (labeling/trust.py): 10 of 10 right gives a Wilson bound of
    # 0.79, under the 0.9 target, so cat is judged and ranked, but not pre-ticked yet.
    assert cat["trained"] and cat["confident"] is False and cat["precision"] == 1.0
    assert run.metrics["cv"]["map"] == pytest.approx(1.0)
    assert not Suggestion.objects.filter(run=run, predicted=True).exists() and report.confident == 0
    # With a target the evidence meets, it is.
    ProjectModelState.objects.filter(project=labeled.project).update(precision_target=0.7)
    report = _import(labeled, _doc(labeled, good))
    predicted = Suggestion.objects.filter(run_id=report.run_id, predicted=True)
    even_unlabeled = {i for n, i in enumerate(labeled.ids) if n >= LABELED and n % 2 == 0}
    assert set(predicted.values_list("image_id", flat=True)) == even_unlabeled
    assert set(predicted.values_list("label_id", flat=True)) == {labeled.cat.id} and report.confident == 5
    # dog has no positive among the submitted images: not judged, shown as ranked probabilities only.
    dog = next(e for e in report.labels if e["label"] == "dog")
    assert dog["trained"] is False and dog["confident"] is False


def test_a_model_wrong_on_the_submitted_images_is_never_pre_ticked(labeled):
    ProjectModelState.objects.update_or_create(project=labeled.project, defaults={"precision_target": 0.6})
    wrong = lambda n: 0.05 if n % 2 == 0 else 0.95  # noqa: E731
    report = _import(labeled, _doc(labeled, wrong))
    run = TrainingRun.objects.get(pk=report.run_id)
    assert run.metrics["cv"]["map"] < 0.6
    assert not Suggestion.objects.filter(run=run, predicted=True).exists()


def test_without_submitted_images_nothing_is_judged_and_nothing_pre_ticked(team):
    report = _import(team, _doc(team, lambda n: 0.99))
    assert report.evaluated_images == 0 and report.suggestions == 60 and report.confident == 0
    run = TrainingRun.objects.get(pk=report.run_id)
    assert "Not judged" in run.metrics["trust"]["still_learning"]


def test_images_are_matched_by_id_sha256_or_file_name_and_the_rest_reported(team):
    first, second, third = Image.objects.filter(pk__in=team.ids[:3]).order_by("id")
    other = Image.objects.exclude(project=team.project).first()  # none: another project's id is simply unmatched
    doc = {
        "model_version": "m",
        "predictions": [
            {"image_id": first.id, "tags": {"cat": 0.3}},
            {"sha256": second.sha256, "tags": {"cat": 0.4}},
            {"file_name": f"some/dir/{third.original_name}", "tags": {"CAT": 0.5}},  # label names: any case
            {"file_name": "nowhere.png", "tags": {"cat": 0.9}},
            {"image_id": 10**9, "tags": {"cat": 0.9}},
        ],
    }
    assert other is None
    report = _import(team, doc)
    assert report.images == 3 and report.unmatched == ["nowhere.png", f"id {10**9}"] and report.unmatched_count == 2
    got = dict(Suggestion.objects.filter(run_id=report.run_id).values_list("image_id", "probability"))
    assert got == pytest.approx({first.id: 0.3, second.id: 0.4, third.id: 0.5}, abs=1e-6)


def test_an_ambiguous_file_name_is_refused_and_nothing_is_stored(team):
    team.add_images(1, size=(50, 50))  # a second "img-0.png", other bytes
    doc = {"model_version": "m", "predictions": [{"file_name": "img-0.png", "tags": {"cat": 0.3}}]}
    with pytest.raises(ValidationError, match="more than one image.*img-0.png"):
        _import(team, doc)
    assert not TrainingRun.objects.exists() and not Suggestion.objects.exists()


@pytest.mark.parametrize(
    "doc, message",
    [
        (
            {"model_version": "m", "predictions": [{"image_id": 0, "tags": {"bird": 0.3}}]},
            "not labels of this project: bird",
        ),
        ({"model_version": "", "predictions": []}, "model_version"),
        ({"model_version": "m", "predictions": [{"file_name": "x.png", "tags": {"cat": 0.3}}]}, "None of the 1"),
    ],
)
def test_it_refuses_unknown_labels_a_missing_version_and_nothing_matched(team, doc, message):
    with pytest.raises(ValidationError, match=message):
        _import(team, doc)
    assert not TrainingRun.objects.exists()


def test_box_predictions_are_checked_and_only_tags_from_boxes_make_tag_suggestions(team):
    image = Image.objects.get(pk=team.ids[0])  # 100 x 80
    inside = {"label": "dog", "bbox": [10, 10, 50, 40], "score": 0.7}
    doc = {"model_version": "m", "predictions": [{"image_id": image.id, "boxes": [inside]}]}
    report = _import(team, doc)
    assert report.box_predictions == 1 and report.boxes_stored == 1 and report.suggestions == 0
    assert current_probe_run_id(project_id=team.project.id) is None  # boxes only: the tag suggestions stay
    report = _import(team, doc, tags_from_boxes=True)
    assert list(Suggestion.objects.filter(run_id=report.run_id).values_list("label_id", "probability")) == [
        (team.dog.id, pytest.approx(0.7))
    ]
    outside = {"label": "dog", "bbox": [90, 10, 50, 40], "score": 0.7}
    with pytest.raises(ValidationError, match="outside their image"):
        _import(team, {"model_version": "m", "predictions": [{"image_id": image.id, "boxes": [outside]}]})


def test_a_later_probe_fit_replaces_the_external_run_and_removes_its_rows(labeled):
    from labeling.suggesting import finalise

    report = _import(labeled, _doc(labeled, lambda n: 0.5))
    probe = TrainingRun.objects.create(project=labeled.project, kind=RunKind.PROBE, status="running")
    assert finalise(probe.id) == "succeeded"
    assert current_probe_run_id(project_id=labeled.project.id) == probe.id
    assert not Suggestion.objects.filter(run_id=report.run_id).exists()


# ---------------------------------------------------------------------------------------------
# The API and the command


def _url(team):
    return reverse("api_project_predictions", args=[team.project.id])


def test_the_api_takes_a_json_body_and_the_suggestions_can_be_accepted(client, labeled):
    client.force_login(labeled.owner)
    response = client.post(_url(labeled), _doc(labeled, lambda n: 0.8), content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["suggestions"] == 20 and body["activated"]
    listed = client.get(reverse("api_project_suggestions", args=[labeled.project.id])).json()["results"]
    assert len(listed) == 20
    image = labeled.ids[LABELED]
    client.force_login(labeled.annotator)
    decided = client.post(reverse("api_suggestion_decide", args=[image, labeled.cat.id, "accept"]))
    assert decided.status_code == 200, decided.content
    assert Image.objects.get(pk=image).tags.filter(label=labeled.cat).exists()


def test_the_api_takes_coco_results_and_yolo_files_as_multipart(client, team):
    client.force_login(team.owner)
    first, second = team.ids[:2]
    coco = json.dumps([{"image_id": first, "category_id": 1, "bbox": [1, 1, 10, 10], "score": 0.6}]).encode()
    response = client.post(
        _url(team),
        {"format": "coco", "model_version": "det-1", "tags_from_boxes": "true", "files": [io.BytesIO(coco)]},
    )
    assert response.status_code == 201, response.content
    assert response.json()["box_predictions"] == 1 and response.json()["suggestions"] == 1
    names, labels = io.BytesIO(b"names: [cat, dog]\n"), io.BytesIO(b"1 0.5 0.5 0.2 0.2 0.9\n")
    names.name, labels.name = "data.yaml", "img-1.txt"
    response = client.post(_url(team), {"format": "yolo", "model_version": "yolo", "files": [names, labels]})
    assert response.status_code == 201, response.content
    assert response.json()["images"] == 1 and response.json()["boxes_stored"] == 1
    assert second in team.ids


def test_the_api_answers_400_with_the_reason(client, team):
    client.force_login(team.owner)
    response = client.post(
        _url(team), {"model_version": "m", "predictions": [{"tags": {}}]}, content_type="application/json"
    )
    assert response.status_code == 400 and "needs “image_id”" in response.json()["error"]
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("who, status", [("owner", 201), ("annotator", 403), ("reviewer", 403), ("outsider", 404)])
def test_only_a_project_admin_may_import_predictions(client, team, who, status):
    client.force_login(getattr(team, who))
    doc = {"model_version": "m", "predictions": [{"image_id": team.ids[0], "tags": {"cat": 0.5}}]}
    assert client.post(_url(team), doc, content_type="application/json").status_code == status
    assert TrainingRun.objects.exists() == (status == 201)


def test_the_command_imports_a_folder_of_yolo_files(team, tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    (tmp_path / "labels" / "img-3.txt").write_text("0 0.5 0.5 0.5 0.5 0.8\n")
    out = io.StringIO()
    call_command(
        "import_predictions",
        team.project.id,
        str(tmp_path),
        "--format",
        "yolo",
        "--model-version",
        "y8",
        "--tags-from-boxes",
        stdout=out,
    )
    report = json.loads(out.getvalue())
    assert report["images"] == 1 and report["suggestions"] == 1 and report["model_version"] == "y8"
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_predictions", team.project.id, str(tmp_path), "--format", "yolo")


def test_the_dashboard_shows_the_external_run_with_its_quality_beside_the_probes(client, labeled):
    report = _import(labeled, _doc(labeled, lambda n: 0.95 if n % 2 == 0 else 0.05))
    client.force_login(labeled.owner)
    response = client.get(reverse("api_project_dashboard", args=[labeled.project.id]))
    assert response.status_code == 200, response.content[:300]
    body = json.dumps(response.json())
    assert '"external"' in body
    run = next(r for r in _runs(response.json()) if r["id"] == report.run_id)
    assert run["kind"] == "external" and run["probe"]["map"] == pytest.approx(1.0)


def _runs(dashboard):
    """The dashboard's run list, wherever it sits in the answer."""
    if isinstance(dashboard, dict):
        for key, value in dashboard.items():
            if key == "runs" and isinstance(value, list):
                return value
            found = _runs(value)
            if found:
                return found
    return []
