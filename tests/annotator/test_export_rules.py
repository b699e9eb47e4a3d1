"""Issue 14, item 10: exports are admin-only (stream, job, download), one background export per
project at a time, and old export files expire."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from annotator.exports import export_job_run, export_jobs_expire
from annotator.models import ExportJob, ExportStatus, Role

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=2, image_size=(32, 32))]


def _export(client, project, **params):
    with mock.patch("annotator.tasks.export_run.delay"):
        return client.get(reverse("api_project_export", args=[project.id]), {"format": "coco", **params})


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.REVIEWER])
def test_annotators_and_reviewers_cannot_export_by_any_route(client, team, role, django_capture_on_commit_callbacks):
    client.force_login(team.owner)
    with django_capture_on_commit_callbacks(execute=True):
        job = _export(client, team.project, background=1).json()
    export_job_run(job_id=job["id"])
    client.force_login({Role.ANNOTATOR: team.annotator, Role.REVIEWER: team.reviewer}[role])
    assert _export(client, team.project).status_code == 403
    assert _export(client, team.project, background=1).status_code == 403
    assert client.get(job["url"]).status_code == 403
    assert client.get(reverse("api_export_download", args=[job["id"]])).status_code == 403
    assert "admin" in _export(client, team.project).json()["error"]


def test_one_background_export_per_project_at_a_time(client, team):
    client.force_login(team.owner)
    first = _export(client, team.project, background=1)
    assert first.status_code == 202
    again = _export(client, team.project, background=1, format="csv")
    assert again.status_code == 409
    assert again.json()["job"]["id"] == first.json()["id"] and "already queued or running" in again.json()["error"]
    assert ExportJob.objects.count() == 1
    ExportJob.objects.update(status=ExportStatus.SUCCEEDED, finished_at=timezone.now())
    assert _export(client, team.project, background=1).status_code == 202  # once it is done, another


def test_old_export_files_expire_with_their_jobs(team, settings):
    settings.EXPORT_KEEP_HOURS = 24
    now = timezone.now()

    def job(hours_ago, status=ExportStatus.SUCCEEDED):
        name = default_storage.save(f"exports/{team.project.id}/x.json", ContentFile(b"{}"))
        return ExportJob.objects.create(
            project=team.project, status=status, file=name, finished_at=now - timedelta(hours=hours_ago)
        ), name

    old, old_name = job(25)
    failed, failed_name = job(30, ExportStatus.FAILED)
    fresh, fresh_name = job(1)
    assert export_jobs_expire(now=now) == 2
    assert list(ExportJob.objects.values_list("id", flat=True)) == [fresh.id]
    assert not default_storage.exists(old_name) and not default_storage.exists(failed_name)
    assert default_storage.exists(fresh_name)


def test_starting_an_export_and_the_command_remove_expired_ones(client, team, settings):
    settings.EXPORT_KEEP_HOURS = 1
    ExportJob.objects.create(
        project=team.project, status=ExportStatus.SUCCEEDED, finished_at=timezone.now() - timedelta(hours=2)
    )
    client.force_login(team.owner)
    assert _export(client, team.project, background=1).status_code == 202
    assert ExportJob.objects.filter(status=ExportStatus.SUCCEEDED).count() == 0
    ExportJob.objects.all().update(status=ExportStatus.SUCCEEDED, finished_at=timezone.now() - timedelta(hours=2))
    call_command("expire_exports", stdout=mock.MagicMock())
    assert not ExportJob.objects.exists()
