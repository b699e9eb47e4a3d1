"""kill -9 of the worker while a detector trains: the next worker takes the run up from its last
checkpoint (the same training images, the losses of the steps done before the kill kept), finishes
it once, and its box suggestions are swapped in."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from twinlabel.celery import app
from labeling.models import BoxSuggestion, ProjectModelState, RunKind, RunStatus, TrainingRun
from labeling.paths import detector_path
from labeling.tasks import run_send
from tests import procs
from tests.labeling.test_detection import boxed_project

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
DETECTOR = {"size": 64, "fpn_channels": 64, "steps": 400, "batch_size": 4, "lr": 3e-3, "warmup_steps": 5}


def _checkpoint(run_id: int) -> dict | None:
    try:
        return torch.load(detector_path(run_id), weights_only=True)
    except (FileNotFoundError, EOFError, RuntimeError):
        return None


def queued_detector(name: str, tmp_path, media_root, settings, **worker_settings: str):
    """(a worker's environment, a queued DETECTOR run on 6 boxed images): the queue purged first."""
    env = procs.worker_env(name, media_root, tmp_path / "models", **worker_settings)
    settings.MODEL_DIR = tmp_path / "models"
    try:
        app.control.purge()
    except Exception:  # an empty filesystem queue may have nothing to purge
        pass
    project = boxed_project(images=10, boxed=6)
    return env, TrainingRun.objects.create(project=project, kind=RunKind.DETECTOR, config={"detector": DETECTOR})


def test_kill_9_while_the_detector_trains_resumes_from_its_checkpoint(tmp_path, media_root, settings):
    env, run = queued_detector("detector-kill", tmp_path, media_root, settings)
    project = run.project

    with procs.worker(env) as first:
        run_send(run)
        # Checkpointed every 40 steps (a tenth of the run): kill once the first one is written.
        saved = procs.poll(lambda: _checkpoint(run.id), 180, interval=0.05)
        assert saved, f"no checkpoint; worker output:\n{first.output[-4000:]}"
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
    assert 0 < saved["step"] < DETECTOR["steps"], "the kill came after the training; make it longer"
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.config["plan"]["train"]
    plan = run.config["plan"]

    with procs.worker(env) as second:  # the same node name takes back what its predecessor held
        done = procs.poll(
            lambda: TrainingRun.objects.filter(pk=run.id, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]).first(),
            300,
        )
        assert done, f"the run did not finish; worker output:\n{second.output[-4000:]}"
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert done.attempts == 2 and done.config["plan"] == plan
    final = _checkpoint(run.id)
    assert final["step"] == DETECTOR["steps"]
    # The resumed run continued the killed one: the steps done before the kill are its first steps.
    assert final["losses"][: saved["step"]] == saved["losses"]
    assert ProjectModelState.objects.get(project=project).detector_run_id == run.id
    assert BoxSuggestion.objects.filter(run=run).exists()
