"""Pretraining defaults per device, the estimate shown before a run starts, the confirmation a
long one needs, time budgets, and the ETA of running runs (no training here)."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from labeling import config, paths, runs, selectors, services
from labeling.ml import presets
from labeling.models import RunKind, RunStatus, TrainingRun
from tests.factories import add_images, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(settings, tmp_path):
    from annotator.services.projects import project_create

    settings.MODEL_DIR = tmp_path / "models"
    owner = make_user("owner")
    project = project_create(name="p", user=owner, labels=["a", "b"])
    add_images(project, 12, size=(32, 32))
    return project


@pytest.fixture
def queued(monkeypatch):
    """Record what would be sent to the worker instead of running it."""
    sent = []
    monkeypatch.setattr("labeling.services.run_enqueue", lambda run: sent.append((run.id,)))
    return sent


def test_the_defaults_follow_the_device_the_worker_reported(project, settings):
    settings.PRETRAIN_DEVICE = "auto"
    assert config.pretrain_defaults()["time_budget_s"] == 600  # nothing known yet: the CPU preset
    path = settings.MODEL_DIR / paths.WORKER_DEVICE_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"device": "NVIDIA H200"}))
    gpu = config.pretrain_defaults()
    assert gpu["time_budget_s"] is None and gpu["resolution"] == 64
    settings.PRETRAIN_DEVICE = "cpu"  # the setting wins over the report
    assert config.pretrain_defaults()["resolution"] == 32
    settings.PRETRAIN_RESOLUTION = 48  # and an explicit setting over the preset
    assert config.pretrain_defaults()["resolution"] == 48


def test_a_detector_fits_time_and_input_size_follow_the_device_unless_the_settings_override_them(settings):
    settings.PRETRAIN_DEVICE = "cpu"
    settings.DETECTOR_TIME_BUDGET_S = settings.DETECTOR_SIZE = None
    cpu = config.detector_defaults()
    assert (cpu["time_budget_s"], cpu["size"]) == (600, 192)
    settings.DETECTOR_TIME_BUDGET_S, settings.DETECTOR_SIZE = 120, 128
    assert config.detector_defaults() == {**cpu, "time_budget_s": 120, "size": 128}
    # DetectorConfig takes them as they are: the run's config is built from these keys alone.
    from labeling.ml.detector import DetectorConfig

    assert DetectorConfig(num_classes=2, **config.detector_defaults()).time_budget_s == 120


def test_when_a_detector_fit_trains_the_backbone_follows_the_device_unless_the_setting_says(settings):
    settings.DETECTOR_FINETUNE_FROM = None
    settings.PRETRAIN_DEVICE = "cpu"
    assert config.detector_rules()["finetune_from"] == 100
    settings.PRETRAIN_DEVICE = "gpu"
    assert config.detector_rules()["finetune_from"] == 300
    settings.DETECTOR_FINETUNE_FROM = 40
    assert config.detector_rules() == {**config.DETECTOR_RULES["gpu"], "finetune_from": 40}


def test_when_a_probe_fit_fine_tunes_follows_the_device_unless_the_setting_says(settings):
    settings.SUGGEST_FINETUNE_FROM = None
    settings.PRETRAIN_DEVICE = "cpu"
    assert config.suggest_rules()["finetune_from"] == 200  # measured: see SUGGEST_RULES
    settings.PRETRAIN_DEVICE = "gpu"
    assert config.suggest_rules()["finetune_from"] == 100
    settings.SUGGEST_FINETUNE_FROM = 0
    assert config.suggest_rules()["finetune_from"] is None
    settings.PRETRAIN_DEVICE = "cpu"
    settings.SUGGEST_FINETUNE_FROM = 150
    assert config.suggest_rules()["finetune_from"] == 150


def test_the_cpu_default_is_a_valid_config_whose_probe_reads_multi_layer_mirror_averaged_features(settings):
    settings.PRETRAIN_DEVICE = "cpu"
    defaults = config.pretrain_defaults()
    config.pretrain_config_check(defaults)  # what a plain Pretrain click stores must pass its own check
    assert presets.feature_options(defaults) == {"multi_layer": True, "flip_tta": True}
    settings.PRETRAIN_DEVICE = "gpu"
    assert presets.feature_options(config.pretrain_defaults()) == {"multi_layer": False, "flip_tta": False}


def test_a_long_run_on_a_cpu_worker_needs_a_confirmation_that_names_the_estimate(project, settings, queued):
    settings.PRETRAIN_DEVICE = "cpu"
    settings.PRETRAIN_CONFIRM_ABOVE_S = 1800
    slow = {"resolution": 64, "small_stem": True, "epochs": 1000, "batch_size": 8}
    with pytest.raises(services.NeedsConfirmation, match=r"would take about .* on the worker's CPU"):
        services.pretrain_start(project=project, config=slow)
    assert not TrainingRun.objects.exists() and not queued
    run = services.pretrain_start(project=project, config=slow, confirm=True)
    assert run.metrics["estimate_s"] > 1800 and len(queued) == 1
    # The default (a 10-minute budget) starts without asking.
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    assert services.pretrain_start(project=project).config["time_budget_s"] == 600


def test_the_runs_endpoint_shows_the_estimate_before_anything_starts(project, settings, client):
    settings.PRETRAIN_DEVICE = "cpu"
    client.force_login(project.memberships.first().user)
    data = client.get(f"/api/projects/{project.id}/runs/").json()
    estimate = data["pretrain_estimate"]
    assert estimate["device"] == "cpu" and estimate["images"] == 12 and not estimate["needs_confirmation"]
    assert estimate["config"]["time_budget_s"] == 600 and estimate["text"]


def test_an_api_start_of_a_long_run_is_a_400_with_the_estimate_until_confirmed(project, settings, client, queued):
    settings.PRETRAIN_DEVICE = "cpu"
    client.force_login(project.memberships.first().user)
    body = {"kind": "pretrain", "config": {"resolution": 64, "small_stem": True, "epochs": 1000, "batch_size": 8}}
    response = client.post(f"/api/projects/{project.id}/runs/", body, content_type="application/json")
    assert response.status_code == 400 and "Confirm" in response.json()["error"]
    response = client.post(
        f"/api/projects/{project.id}/runs/", {**body, "confirm": True}, content_type="application/json"
    )
    assert response.status_code == 201 and response.json()["eta_s"] > 1800


@pytest.mark.parametrize("budget", [5, 10**9, "600", True])
def test_a_time_budget_is_bounded(project, budget, queued):
    with pytest.raises(ValidationError, match="time_budget_s"):
        services.pretrain_start(project=project, config={"time_budget_s": budget})


def test_a_presets_batch_is_at_most_a_quarter_of_a_small_project_and_never_under_its_least():
    assert presets.fitted_batch(256, 10_000, "cpu") == 256
    assert presets.fitted_batch(256, 600, "cpu") == 150  # four steps an epoch
    assert presets.fitted_batch(256, 100, "cpu") == 64  # never under the least batch
    assert presets.fitted_batch(32, 100, "cpu") == 32  # nor over the preset's own
    assert presets.fitted_batch(256, 100, "gpu") == 256  # a device without a rule keeps it


def test_a_runs_batch_is_fitted_to_its_project_unless_a_setting_or_the_request_sets_it(
    project, settings, monkeypatch, queued, client
):
    settings.PRETRAIN_DEVICE, settings.PRETRAIN_BATCH_SIZE = "cpu", None
    monkeypatch.setitem(presets.PRESETS["cpu"], "batch_size", 256)  # a preset batch over the least
    monkeypatch.setitem(presets.FITTED_BATCH, "cpu", (8, 4))  # the 12 images of the fixture: batches of 8
    client.force_login(project.memberships.first().user)
    shown = client.get(f"/api/projects/{project.id}/runs/").json()["pretrain_estimate"]["config"]
    assert shown["batch_size"] == 8 == services.pretrain_start(project=project).config["batch_size"]
    TrainingRun.objects.all().delete()
    assert services.pretrain_start(project=project, config={"batch_size": 12}).config["batch_size"] == 12
    TrainingRun.objects.all().delete()
    settings.PRETRAIN_BATCH_SIZE = 256
    assert services.pretrain_start(project=project).config["batch_size"] == 256


def test_epochs_asked_for_are_not_cut_by_the_presets_time_budget(project, settings, queued):
    settings.PRETRAIN_DEVICE = "cpu"
    assert services.pretrain_start(project=project, config={"epochs": 3}).config["time_budget_s"] is None


def _running_pretraining(project, **fields) -> TrainingRun:
    """A pretraining row as a worker leaves it once started: running, claimed, heartbeat now."""
    return TrainingRun.objects.create(
        project=project,
        kind=RunKind.PRETRAIN,
        config={},
        status=RunStatus.RUNNING,
        worker="w:1",
        heartbeat_at=timezone.now(),
        started_at=timezone.now(),
        **fields,
    )


def test_a_running_pretraining_has_an_eta_from_its_latest_progress(project):
    run = _running_pretraining(project, metrics={"estimate_s": 600})
    assert 590 <= selectors.run_summary(run)["eta_s"] <= 600  # before the first report: the estimate
    monitor = runs.RunMonitor(run)
    monitor.progress(SimpleNamespace(epoch=0, step=5, steps_per_epoch=10, loss=1.0, images_per_s=50.0, eta_s=120.0))
    run.refresh_from_db()
    assert 115 <= selectors.run_summary(run)["eta_s"] <= 120
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    run.refresh_from_db()
    assert selectors.run_summary(run)["eta_s"] is None


def test_a_probe_fit_has_an_eta_only_while_it_fine_tunes(project):
    run = _running_pretraining(project)
    TrainingRun.objects.filter(pk=run.pk).update(kind=RunKind.PROBE)
    run.refresh_from_db()
    assert selectors.run_summary(run)["eta_s"] is None  # a plain fit: seconds, no estimate
    TrainingRun.objects.filter(pk=run.pk).update(eta_at=timezone.now() + timedelta(seconds=90))
    run.refresh_from_db()
    assert 85 <= selectors.run_summary(run)["eta_s"] <= 90


def test_progress_reaches_the_database_at_least_every_ten_seconds():
    # The trainer reports by time (tests/labeling/ml/test_train.py); the worker asks for <= 10 s.
    assert 0 < config.PROGRESS_EVERY_S <= 10
    assert runs.RunMonitor.__init__.__defaults__[0] <= 5  # cancellations are noticed within 5 s


@pytest.mark.django_db(transaction=True)
def test_a_cancel_reaches_a_running_pretraining_within_one_heartbeat(project):
    import time

    run = _running_pretraining(project)
    with runs.RunMonitor(run, interval=0.2) as monitor:
        assert not monitor.should_stop()
        services.run_cancel(run=run)
        deadline = time.monotonic() + 10
        while not monitor.should_stop() and time.monotonic() < deadline:
            time.sleep(0.05)
        # The trainer checks should_stop before every step: the run stops at its next step.
        assert monitor.should_stop()


def test_the_gpu_preset_compiles_a_project_of_fifty_thousand_images_but_not_a_demo(settings):
    """The product's decision (labeling.pretraining._compiled) on the GPU preset's estimate."""
    from labeling.ml.presets import PRESETS
    from labeling.pretraining import _compiled

    gpu = {**PRESETS["gpu"], "time_budget_s": None}
    assert _compiled(gpu, images=50_000, device="cuda", processes=1)  # 100 epochs, ~14 min eager
    assert not _compiled(gpu, images=10_000, device="cuda", processes=1)  # ~3 min eager: compiling does not repay
    assert not _compiled(PRESETS["cpu"], images=10_000, device="cpu", processes=1)
    settings.PRETRAIN_COMPILE = "off"
    assert not _compiled(gpu, images=50_000, device="cuda", processes=1)
    settings.PRETRAIN_COMPILE = "on"
    assert _compiled(PRESETS["cpu"], images=300, device="cpu", processes=1)
