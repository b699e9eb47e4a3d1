"""Broker outages never fail committed work (issue 14 item 4), without a broker: the send after the
commit is made to fail, and the sweep's steps are called directly. tests/integration/
test_broker_outage.py kills a real Redis under a real worker."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from annotator.models import ExportJob, ImageStatus
from annotator.sweep import exports_resend, sweep_once
from annotator.tasks import QUEUE_DOWN_MESSAGE
from labeling.models import ProjectModelState, RunKind, RunStatus, SuggestionShard, TrainingRun
from labeling.suggesting import finish_if_complete
from labeling.sweep import runs_sweep
from tests.factories import add_images, make_project, make_user

pytestmark = pytest.mark.django_db
DOWN = OperationalError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")


@pytest.fixture
def owner():
    return make_user("owner")


@pytest.fixture
def project(owner):
    return make_project(owner=owner)


def _age(model, pk, seconds=60, **fields):
    model.objects.filter(pk=pk).update(created_at=timezone.now() - timedelta(seconds=seconds), **fields)


def test_it_answers_201_with_a_message_when_the_broker_is_down(
    client, owner, project, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    url = reverse("api_project_runs", args=[project.id])
    with (
        mock.patch("labeling.tasks.gpu_pretrain.delay", side_effect=DOWN),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(url, {"kind": "pretrain", "config": {"epochs": 1}}, content_type="application/json")
    assert response.status_code == 201, response.content
    # (The answer itself carries the message when the request is not inside a test's transaction.)
    shown = client.get(reverse("api_run_detail", args=[response.json()["id"]])).json()
    assert shown["status"] == "queued" and shown["error"] == QUEUE_DOWN_MESSAGE
    assert TrainingRun.objects.get().sent_at is None


def test_a_background_export_is_accepted_when_the_broker_is_down(
    client, owner, project, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    url = reverse("api_project_export", args=[project.id]) + "?format=coco&background=1"
    with (
        mock.patch("annotator.tasks.export_run.delay", side_effect=DOWN),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.get(url)
    assert response.status_code == 202
    shown = client.get(response.json()["url"]).json()
    assert shown["status"] == "queued" and shown["error"] == QUEUE_DOWN_MESSAGE


def test_the_submission_that_queues_a_refit_is_saved_and_answered(
    client, owner, project, settings, django_capture_on_commit_callbacks
):
    settings.PROBE_REFIT_EVERY = 1
    pretrain = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED)
    ProjectModelState.objects.create(project=project, pretrain_run=pretrain)
    image_id = add_images(project, 1)[0]
    client.force_login(owner)
    with (
        mock.patch("labeling.tasks.fit_probe.delay", side_effect=DOWN),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            reverse("api_image_submit", args=[image_id]), {"version": 1}, content_type="application/json"
        )
    assert response.status_code == 200, response.content
    assert project.images.get().status == ImageStatus.SUBMITTED
    refit = TrainingRun.objects.get(kind=RunKind.PROBE)
    assert refit.status == RunStatus.QUEUED and refit.sent_at is None and refit.error == QUEUE_DOWN_MESSAGE


def test_the_sweep_sends_what_the_broker_never_took_and_clears_the_message(project):
    run = TrainingRun.objects.create(project=project, kind=RunKind.PROBE, error=QUEUE_DOWN_MESSAGE)
    fresh = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN)  # its request is sending it now
    job = ExportJob.objects.create(project=project, options={"format": "coco"}, error=QUEUE_DOWN_MESSAGE)
    _age(TrainingRun, run.pk)
    _age(ExportJob, job.pk)
    with (
        mock.patch("labeling.tasks.fit_probe.delay") as fit,
        mock.patch("labeling.tasks.gpu_pretrain.delay") as pre,
        mock.patch("annotator.tasks.export_run.delay") as export,
    ):
        assert runs_sweep()["sent"] == [run.id]
        assert exports_resend() == [job.id]
        # Sent now: the next sweep leaves them alone.
        assert runs_sweep()["sent"] == [] and exports_resend() == []
    fit.assert_called_once_with(run.id)
    export.assert_called_once_with(job.id)
    pre.assert_not_called()
    run.refresh_from_db()
    job.refresh_from_db()
    assert run.sent_at and run.error == "" and job.sent_at and job.error == ""
    assert TrainingRun.objects.get(pk=fresh.pk).sent_at is None


def test_the_sweep_keeps_trying_while_the_broker_is_down(project):
    run = TrainingRun.objects.create(project=project, kind=RunKind.PROBE)
    _age(TrainingRun, run.pk)
    with mock.patch("labeling.tasks.fit_probe.delay", side_effect=DOWN):
        assert sweep_once()["runs"]["sent"] == []
    run.refresh_from_db()
    assert run.sent_at is None and run.error == QUEUE_DOWN_MESSAGE
    with mock.patch("labeling.tasks.fit_probe.delay") as fit:
        assert sweep_once()["runs"]["sent"] == [run.id]
    fit.assert_called_once_with(run.id)


def test_a_message_lost_with_the_broker_is_sent_again_after_a_while(project, settings):
    settings.SWEEP_RESEND_SECONDS = 60
    run = TrainingRun.objects.create(project=project, kind=RunKind.PROBE, sent_at=timezone.now())
    with mock.patch("labeling.tasks.fit_probe.delay") as fit:
        assert runs_sweep()["sent"] == []
        TrainingRun.objects.filter(pk=run.pk).update(sent_at=timezone.now() - timedelta(seconds=61))
        assert runs_sweep()["sent"] == [run.id]
    fit.assert_called_once_with(run.id)


def test_a_run_whose_worker_went_quiet_is_queued_again_then_failed(project, settings):
    settings.RUN_STALE_SECONDS, settings.RUN_MAX_ATTEMPTS = 60, 2
    old = timezone.now() - timedelta(seconds=61)
    run = TrainingRun.objects.create(
        project=project, kind=RunKind.PROBE, status=RunStatus.RUNNING, worker="w@h:1", heartbeat_at=old, attempts=1
    )
    alive = TrainingRun.objects.create(
        project=project, kind=RunKind.PRETRAIN, status=RunStatus.RUNNING, heartbeat_at=timezone.now(), attempts=1
    )
    _age(TrainingRun, run.pk, 120)
    with mock.patch("labeling.tasks.fit_probe.delay") as fit:
        result = runs_sweep()
    assert result["requeued"] == [run.id] and result["sent"] == [run.id]
    fit.assert_called_once_with(run.id)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and "stopped answering" in run.error and "attempt 2 of 2" in run.error
    # Claimed again (attempt 2), and quiet again: now it fails, with the message.
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, heartbeat_at=old, attempts=2)
    assert runs_sweep()["failed"] == [run.id]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "after 2 attempts; retry it" in run.error and run.finished_at
    assert TrainingRun.objects.get(pk=alive.pk).status == RunStatus.RUNNING


def test_the_last_shard_finishes_the_run_from_the_database(project):
    run = TrainingRun.objects.create(
        project=project,
        kind=RunKind.PROBE,
        status=RunStatus.RUNNING,
        config={"suggest_blocks": [0, 3]},
        heartbeat_at=timezone.now(),
    )
    SuggestionShard.objects.create(run=run, block=0, worker="a", images=1, finished_at=timezone.now())
    assert finish_if_complete(run.id) is None
    SuggestionShard.objects.create(run=run, block=3, worker="b", images=1, finished_at=timezone.now())
    assert finish_if_complete(run.id) == "succeeded"
    assert TrainingRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    assert ProjectModelState.objects.get(project=project).probe_run_id == run.id
    assert finish_if_complete(run.id) is None  # the other last shard: nothing more to do


def test_a_restarted_worker_does_not_resume_a_run_that_took_it_down_every_time(project, settings):
    from labeling.tasks import resume_orphans

    settings.RUN_MAX_ATTEMPTS = 3
    run = TrainingRun.objects.create(
        project=project,
        kind=RunKind.PRETRAIN,
        status=RunStatus.RUNNING,
        worker="w@host:7",
        heartbeat_at=timezone.now(),
        attempts=3,
    )
    with mock.patch("labeling.tasks.gpu_pretrain.delay") as send:
        assert resume_orphans("w@host") == []
    send.assert_not_called()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "each of 3 attempts" in run.error


def test_the_sweep_deletes_expired_export_jobs_with_their_files(project, settings):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from annotator.models import ExportStatus

    settings.EXPORT_KEEP_HOURS = 1
    name = default_storage.save(f"exports/{project.id}/old.json", ContentFile(b"{}"))
    ExportJob.objects.create(
        project=project, status=ExportStatus.SUCCEEDED, file=name, finished_at=timezone.now() - timedelta(hours=2)
    )
    assert sweep_once()["exports_expire"] == 1
    assert not ExportJob.objects.exists() and not default_storage.exists(name)


def test_an_export_whose_worker_was_killed_is_queued_again_then_failed(project, settings):
    """A worker killed mid-export leaves its job running; its heartbeat goes quiet and the sweep
    takes it back to the queue (sent again in the same sweep), then fails it after the last attempt."""
    from annotator.exports import export_job_run
    from annotator.models import BucketImport, BucketSource, ExportStatus

    settings.RUN_STALE_SECONDS, settings.RUN_MAX_ATTEMPTS = 60, 2
    add_images(project, 2)
    old = timezone.now() - timedelta(seconds=61)
    job = ExportJob.objects.create(project=project, options={"format": "json"}, status=ExportStatus.RUNNING)
    ExportJob.objects.filter(pk=job.pk).update(heartbeat_at=old, attempts=1, created_at=old)
    alive = ExportJob.objects.create(project=project, status=ExportStatus.RUNNING, heartbeat_at=timezone.now())
    imp = BucketImport.objects.create(
        source=BucketSource.objects.create(project=project, bucket="pics"),
        status=ExportStatus.RUNNING,
        heartbeat_at=old,
        attempts=2,
    )
    with mock.patch("annotator.tasks.export_run.delay") as send:
        result = sweep_once()
    assert result["jobs_stale"] == {"requeued": [job.id], "failed": [imp.id]}
    assert result["exports"] == [job.id]
    send.assert_called_once_with(job.id)
    job.refresh_from_db()
    assert job.status == ExportStatus.QUEUED and "stopped answering" in job.error and "attempt 2 of 2" in job.error
    imp.refresh_from_db()
    assert imp.status == ExportStatus.FAILED and "after 2 attempts; retry it" in imp.error and imp.finished_at
    assert ExportJob.objects.get(pk=alive.pk).status == ExportStatus.RUNNING
    # The resent message is taken: the claim counts the attempt, clears the message, and the job ends.
    export_job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == ExportStatus.SUCCEEDED and job.attempts == 2 and job.error == "" and job.file


def test_a_running_job_beats_at_most_every_job_heartbeat_seconds(project, settings):
    from annotator.models import ExportStatus
    from annotator.jobs import JobHeartbeat, job_claim

    settings.JOB_HEARTBEAT_SECONDS = 10
    job = ExportJob.objects.create(project=project)
    assert job_claim(ExportJob, job.id) and not job_claim(ExportJob, job.id)  # a second delivery finds it taken
    job.refresh_from_db()
    assert job.status == ExportStatus.RUNNING and job.attempts == 1 and job.heartbeat_at
    first = job.heartbeat_at
    beat = JobHeartbeat(ExportJob, job.id)
    beat()
    assert ExportJob.objects.get(pk=job.pk).heartbeat_at == first  # too soon: no write
    beat.last -= timedelta(seconds=11)
    beat()
    assert ExportJob.objects.get(pk=job.pk).heartbeat_at > first
