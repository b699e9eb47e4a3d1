"""A long detector fit does not hold the queue: with a real worker (one process), a pretraining
queued while the detector trains runs before the detector finishes. The fit pauses at a
checkpoint once its slice (TRAINING_SLICE_S) is up, goes to the back of the queue, and resumes
from that checkpoint after the pretraining, as one run with one attempt."""

from __future__ import annotations

import pytest

from labeling import services
from labeling.models import RunStatus, TrainingRun
from labeling.tasks import run_send
from tests import procs
from tests.integration.test_detector_kill import DETECTOR, _checkpoint, queued_detector
from tests.labeling.conftest import TINY

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _ended(run_id: int) -> TrainingRun | None:
    ended = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
    return TrainingRun.objects.filter(pk=run_id, status__in=ended).first()


def test_a_detector_fit_pauses_for_a_pretraining_queued_behind_it_and_resumes_after_it(tmp_path, media_root, settings):
    env, detector = queued_detector("detector-pause", tmp_path, media_root, settings, TRAINING_SLICE_S="1")
    project = detector.project

    with procs.worker(env) as worker:
        run_send(detector)
        early = procs.poll(lambda: _checkpoint(detector.id), 180, interval=0.05)  # it trains
        assert early, f"no checkpoint; worker output:\n{worker.output[-4000:]}"
        assert early["step"] < DETECTOR["steps"], "the fit ended before the pretraining was queued; make it longer"
        pretrain = services.pretrain_start(project=project, config=TINY)  # sent behind the detector
        pretrained = procs.poll(lambda: _ended(pretrain.id), 240)
        assert pretrained, f"the pretraining did not end; worker output:\n{worker.output[-4000:]}"
        assert pretrained.status == RunStatus.SUCCEEDED, pretrained.error
        detector.refresh_from_db()
        assert detector.status in (RunStatus.QUEUED, RunStatus.RUNNING), "it should have paused, not finished"
        done = procs.poll(lambda: _ended(detector.id), 300)
        assert done, f"the detector did not end; worker output:\n{worker.output[-4000:]}"
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert done.finished_at > pretrained.finished_at and done.error == ""
    assert done.attempts == 1  # pauses are not failed attempts
    assert "yielded" in worker.output  # the task's own outcome, as the worker logged it
    final = _checkpoint(detector.id)
    assert final["step"] == DETECTOR["steps"]
    assert final["losses"][: early["step"]] == early["losses"]  # one fit, continued from where it paused
