"""Deleting a project: the page, the API and the admin all go through one service that removes every
row (boxes and tags first: their label link is PROTECT) and, after the commit, every file."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models.deletion import ProtectedError
from django.urls import reverse
from django.utils import timezone

from annotator.services.deletion import project_delete, project_delete_counts
from annotator.models import Box, ExportJob, Image, ImageTag, LabelClass, Project, Review
from annotator.services.annotations import annotations_import, BoxIn, ImageAnnotations
from labeling.models import EmbeddingSet, ImageUncertainty, ProjectModelState, RunKind, RunStatus, Suggestion
from labeling.models import SuggestionDecision, TrainingRun
from labeling.paths import run_dir
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def full(settings, tmp_path):
    """A project with something in every table that hangs off it, and files in every place."""
    settings.MODEL_DIR = tmp_path / "models"
    owner = make_user("owner")
    project = make_project(owner=owner)
    cat, dog = project.labels.order_by("id")
    first, second, third = add_images(project, 3)
    annotations_import(
        project=project,
        user=owner,
        items=[
            ImageAnnotations(first, (BoxIn(cat.id, 1, 1, 5, 5),), (dog.id,)),
            ImageAnnotations(second, (BoxIn(dog.id, 2, 2, 5, 5), BoxIn(cat.id, 0, 0, 3, 3)), ()),
        ],
    )
    Review.objects.create(image_id=first, annotator=owner, reviewer=owner, decision="accepted")
    run = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED)
    probe = TrainingRun.objects.create(
        project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED, backbone_run=run
    )
    EmbeddingSet.objects.create(run=run, project=project, path="x", resolution=16, count=3, dim=8)
    ProjectModelState.objects.create(project=project, pretrain_run=run, probe_run=probe)
    Suggestion.objects.create(run=probe, image_id=third, label=cat, probability=0.7, predicted=True)
    ImageUncertainty.objects.create(run=probe, image_id=third, score=0.2)
    SuggestionDecision.objects.create(
        image_id=third, label=cat, run=probe, probability=0.7, decision="rejected", user=owner
    )
    export_name = default_storage.save(f"exports/{project.id}/1-project.json", ContentFile(b"{}"))
    ExportJob.objects.create(
        project=project, created_by=owner, status="succeeded", file=export_name, finished_at=timezone.now()
    )
    for path in (run_dir(run.id) / "checkpoint.pt", Path(settings.MODEL_DIR) / "cache" / f"project-{project.id}" / "x"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    # Another project's rows and files must survive.
    other = make_project(owner=owner, name="Other")
    kept = add_images(other, 1)
    return owner, project, other, kept


def _files(project_id: int) -> list[str]:
    root = Path(default_storage.path(""))
    return [
        str(p)
        for prefix in (f"projects/{project_id}", f"exports/{project_id}")
        for p in (root / prefix).rglob("*")
        if p.is_file()
    ]


def test_it_needs_the_service_a_plain_delete_is_protected(full):
    _, project, _, _ = full
    with pytest.raises(ProtectedError):
        project.delete()  # what the admin did before: Box -> label is PROTECT


def test_it_counts_what_it_deletes(full):
    _, project, _, _ = full
    assert project_delete_counts(project=project) == {
        "images": 3,
        "boxes": 3,
        "tags": 1,
        "labels": 2,
        "reviews": 1,
        "members": 1,
        "runs": 2,
        "suggestions": 1,
        "exports": 1,
    }


def test_it_deletes_every_row_and_file(full, settings, django_capture_on_commit_callbacks):
    _, project, other, kept = full
    runs = list(TrainingRun.objects.filter(project=project).values_list("id", flat=True))
    assert _files(project.id)
    with django_capture_on_commit_callbacks(execute=True):
        project_delete(project=project)
    assert not Project.objects.filter(pk=project.id).exists()
    for model in (Image, LabelClass, TrainingRun, ExportJob, EmbeddingSet, ProjectModelState):
        assert not model.objects.filter(project_id=project.id).exists(), model
    assert not Box.objects.exists() and not ImageTag.objects.exists() and not Review.objects.exists()
    assert not Suggestion.objects.exists() and not SuggestionDecision.objects.exists()
    assert _files(project.id) == []
    assert not any(run_dir(r).exists() for r in runs)
    assert not (Path(settings.MODEL_DIR) / "cache" / f"project-{project.id}").exists()
    # The other project is whole.
    assert Image.objects.filter(project=other).count() == 1 and _files(other.id)
    assert default_storage.exists(Image.objects.get(pk=kept[0]).file.name)


def test_it_keeps_the_files_when_the_delete_rolls_back(full, django_capture_on_commit_callbacks):
    from django.db import transaction

    _, project, _, _ = full
    before = _files(project.id)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            project_delete(project=project)
            raise RuntimeError("something after it failed")
    assert Project.objects.filter(pk=project.id).exists() and _files(project.id) == before


def test_the_page_names_the_counts_and_wants_the_name(client, full, django_capture_on_commit_callbacks):
    owner, project, _, _ = full
    client.force_login(owner)
    url = reverse("project_delete", args=[project.id])
    page = client.get(url).content.decode()
    assert 'data-count="images">3<' in page and 'data-count="boxes">3<' in page and "Pets" in page
    assert client.post(url, {"confirm": "pets"}).status_code == 400
    assert Project.objects.filter(pk=project.id).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"confirm": "Pets"})
    assert response.status_code == 302 and response["Location"] == reverse("project_list")
    assert not Project.objects.filter(pk=project.id).exists() and _files(project.id) == []


def test_the_api_asks_for_the_name_then_deletes(client, full, django_capture_on_commit_callbacks):
    owner, project, _, _ = full
    annie = make_user("annie")
    add_member(project, annie, "annotator")
    url = reverse("api_project", args=[project.id])
    client.force_login(annie)
    assert client.delete(url + "?confirm=Pets").status_code == 403
    client.force_login(owner)
    asked = client.delete(url)
    assert asked.status_code == 400
    assert asked.json()["deleted"]["boxes"] == 3 and "confirm" in asked.json()["error"]
    with django_capture_on_commit_callbacks(execute=True):
        done = client.delete(url + "?confirm=Pets")
    assert done.status_code == 200 and done.json()["deleted"]["images"] == 3
    assert not Project.objects.filter(pk=project.id).exists() and _files(project.id) == []


def test_the_admin_deletes_it_with_a_summary(client, full, django_capture_on_commit_callbacks):
    _, project, other, _ = full
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    url = reverse("admin:annotator_project_delete", args=[project.id])
    page = client.get(url)
    assert page.status_code == 200 and "3 images, 3 boxes, 1 tags" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Project.objects.filter(pk=project.id).exists() and _files(project.id) == []
    # The list's bulk action too.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:annotator_project_changelist"),
            {"action": "delete_selected", "_selected_action": [other.id], "post": "yes"},
        )
    assert response.status_code == 302 and not Project.objects.filter(pk=other.id).exists()
