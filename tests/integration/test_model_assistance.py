"""Model assistance end to end with a real worker process (bin/worker) on the configured broker and
database (Redis + PostgreSQL in CI; the filesystem broker + SQLite in the embedded run):
pretrain -> kill -9 the worker mid-run -> a new worker resumes from the checkpoint -> the probe
fits by itself -> submissions through the HTTP endpoints trigger a refit, which swaps in the frozen
probe's suggestions and queues its fine-tuning stage (SUGGEST_FINETUNE_FROM, the worker's setting),
which swaps in its own -> suggestions come back from the API, once per image and label."""

from __future__ import annotations

import io
import json
import os
import signal

import pytest
from django.urls import reverse

from twinlabel.celery import app
from annotator.demo.scenes import LABELS, render_scene
from annotator.models import Image
from annotator.services.annotations import annotations_import, ImageAnnotations
from annotator.services.images import images_import
from annotator.services.projects import project_create
from annotator.sources import ImageSource
from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun
from tests import procs
from tests.factories import make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
CONFIG = {"resolution": 24, "epochs": 12, "batch_size": 8, "projector": [64], "warmup_epochs": 0}


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    render_scene(index, seed=9, size=(48, 48)).image.save(buffer, "PNG")
    return buffer.getvalue()


def _wait(condition, timeout: float, what: str, worker: procs.Service):
    value = procs.poll(condition, timeout)
    if value:
        return value
    runs = list(TrainingRun.objects.values("id", "kind", "status", "epoch", "worker", "attempts", "error"))
    raise AssertionError(f"timed out waiting for {what}; runs: {runs}\nworker output:\n{worker.output[-5000:]}")


def _submit(client, image_id: int, tags: list[int]) -> None:
    """Save an image's tags and submit it, through the HTTP endpoints."""
    state = client.get(reverse("api_image_annotations", args=[image_id])).json()
    saved = client.put(
        reverse("api_image_annotations", args=[image_id]),
        json.dumps({"version": state["image"]["version"], "boxes": [], "tags": tags}),
        content_type="application/json",
    )
    assert saved.status_code == 200, saved.content
    done = client.post(
        reverse("api_image_submit", args=[image_id]),
        json.dumps({"version": saved.json()["image"]["version"]}),
        content_type="application/json",
    )
    assert done.status_code == 200, done.content


@pytest.mark.timeout(
    900
)  # two workers, a pretraining, five probe fits, two of them fine-tuning (264 s on a slow 2-core host)
def test_pretrain_survives_kill_9_and_suggestions_follow_submissions(client, settings, tmp_path, media_root):
    settings.PROBE_REFIT_EVERY = 3
    env = procs.worker_env(
        "assist",
        media_root,
        tmp_path / "models",
        PROBE_REFIT_EVERY="3",
        SUGGEST_FINETUNE_FROM="19",
        TRAINING_SLICE_S="1",
    )
    try:
        app.control.purge()  # messages left by earlier runs of the suite are not this test's
    except Exception:  # an empty filesystem queue may have nothing to purge
        pass
    owner = make_user("owner")
    project = project_create(name="Shapes", user=owner, labels=LABELS)
    report = images_import(project=project, sources=[ImageSource(f"s{i}.png", lambda i=i: _png(i)) for i in range(40)])
    ids = [item.image_id for item in report.imported]
    label_id = dict(project.labels.values_list("name", "id"))
    annotations_import(
        project=project,
        user=owner,
        items=[
            ImageAnnotations(i, tag_label_ids=tuple(label_id[n] for n in render_scene(k, seed=9).labels))
            for k, i in enumerate(ids[:16])
        ],
    )
    client.force_login(owner)

    started = client.post(
        reverse("api_project_runs", args=[project.id]),
        json.dumps({"kind": "pretrain", "config": CONFIG}),
        content_type="application/json",
    )
    assert started.status_code == 201, started.content
    run_id = started.json()["id"]

    with procs.worker(env) as first:
        # Wait for a checkpoint (at least one whole epoch) and a little more, then kill -9 the worker.
        _wait(lambda: TrainingRun.objects.get(pk=run_id).epoch >= 2, 240, "two epochs", first)
        killed_at = TrainingRun.objects.get(pk=run_id)
        assert killed_at.status == RunStatus.RUNNING and killed_at.attempts == 1
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
    steps_before = len(TrainingRun.objects.get(pk=run_id).loss_history)
    assert TrainingRun.objects.get(pk=run_id).status == RunStatus.RUNNING  # nobody left to say otherwise

    with procs.worker(env) as second:  # the same node name: at start it takes back what its predecessor held
        run = _wait(
            lambda: TrainingRun.objects.filter(pk=run_id, status=RunStatus.SUCCEEDED).first(),
            300,
            "the resumed pretraining",
            second,
        )
        assert run.attempts == 2
        history = [step for step, _ in run.loss_history]
        resumed_from = history[steps_before]
        assert resumed_from > run.steps_per_epoch  # continued after a checkpointed epoch, not from scratch
        assert history[-1] == run.epochs * run.steps_per_epoch

        first_probe = _wait(
            lambda: TrainingRun.objects.filter(project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED).first(),
            120,
            "the first probe fit",
            second,
        )
        assert first_probe.metrics["labeled"] == 16

        # Three submissions through the HTTP endpoints: the third queues a refit by itself.
        for k in range(16, 19):
            _submit(client, ids[k], [label_id[n] for n in render_scene(k, seed=9).labels])
        frozen = _wait(
            lambda: TrainingRun.objects.filter(
                project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED, id__gt=first_probe.id
            ).first(),
            120,
            "the refit",
            second,
        )
        # Its second stage, queued by the worker when the first had swapped its suggestions in. Three
        # more submissions while it fine-tunes queue a refit at once; the fine-tuning pauses for it
        # between two networks, then resumes on its own 19 images.
        tuning = _wait(
            lambda: TrainingRun.objects.filter(
                project=project,
                finetune_stage=True,
                status=RunStatus.RUNNING,
                id__gt=frozen.id,
                metrics__finetune__networks__gte=1,
            ).first(),
            300,
            "the refit's fine-tuning stage, one network trained",
            second,
        )
        for k in range(19, 22):
            _submit(client, ids[k], [label_id[n] for n in render_scene(k, seed=9).labels])
        later = _wait(
            lambda: TrainingRun.objects.filter(
                project=project, finetune_stage=False, status=RunStatus.SUCCEEDED, id__gt=tuning.id
            ).first(),
            120,
            "the refit queued beside the fine-tuning",
            second,
        )
        refit = _wait(
            lambda: TrainingRun.objects.filter(pk=tuning.id, status=RunStatus.SUCCEEDED).first(),
            300,
            "the paused fine-tuning stage",
            second,
        )
        # The newer labels' fine-tuning, queued by the worker when the paused one was done.
        last = _wait(
            lambda: TrainingRun.objects.filter(
                project=project, finetune_stage=True, status=RunStatus.SUCCEEDED, id__gt=later.id
            ).first(),
            300,
            "the newer labels' fine-tuning stage",
            second,
        )
    assert first_probe.metrics["finetune"] is None  # 16 labeled, below the rule: one stage
    assert frozen.metrics["labeled"] == 19 and frozen.config == {} and not frozen.finetune_stage
    assert frozen.metrics["finetune"] == {"kept": "features", "deferred": True, "images": 19}
    assert refit.finetune_stage and refit.metrics["labeled"] == 19
    assert refit.metrics["finetune"]["kept"] == refit.metrics["scorer"] and refit.metrics["finetune"]["seconds"] > 0
    assert refit.metrics["finetune"]["paused"] >= 1 and later.finished_at < refit.finished_at
    assert later.metrics["labeled"] == 22 and later.metrics["finetune"]["deferred"]
    assert last.metrics["labeled"] == 22 and last.metrics["finetune"]["paused"] == 0
    assert TrainingRun.objects.filter(project=project, kind=RunKind.PROBE).count() == 5
    assert ProjectModelState.objects.get(project=project).probe_run_id == last.id
    refit = last

    unlabeled = ids[22:]
    trained = sum(1 for label in refit.metrics["labels"] if label["trained"])
    assert trained >= 1
    # Once per image and label, only from the active run: no duplicates, nothing half-swapped.
    assert Suggestion.objects.filter(image__project=project).count() == len(unlabeled) * trained
    answer = client.get(reverse("api_image_annotations", args=[unlabeled[0]])).json()
    assert len(answer["suggestions"]) == trained
    assert all(0 <= s["probability"] <= 1 for s in answer["suggestions"])
    page = client.get(reverse("annotate", args=[project.id]), {"image": unlabeled[0]})
    assert page.context["initial"]["suggestions"] == answer["suggestions"]
    assert Image.objects.filter(project=project, status="submitted").count() == 22
