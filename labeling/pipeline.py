"""The work behind the training tasks: claim a run, feed ``labeling.ml`` from the database and
storage, report progress as it goes, and write the results back.

Claiming is one conditional UPDATE: a run is taken when it is queued, or when the worker that
held it has gone quiet (its heartbeat is stale). A worker that lost its claim finds out when its
writes match no row, and stops. Everything a run writes is keyed by the run, so running it twice
(after a crash, or a duplicate message) replaces its own partial output and changes nothing else.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotator.models import Box, Image, ImageStatus, ImageTag
from labeling.models import EmbeddingSet, ProjectModelState, RunKind, RunStatus, SuggestionShard, TrainingRun

log = logging.getLogger(__name__)
UNLABELED_STATUSES = (ImageStatus.UNLABELED, ImageStatus.IN_PROGRESS, ImageStatus.SKIPPED)


def worker_id(node: str) -> str:
    return f"{node}:{os.getpid()}"


def run_dir(run_id: int) -> Path:
    return Path(settings.MODEL_DIR) / "runs" / str(run_id)


def claim(run_id: int, worker: str) -> TrainingRun | None:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.RUN_STALE_SECONDS)
    taken = TrainingRun.objects.filter(pk=run_id).filter(
        Q(status=RunStatus.QUEUED, cancel_requested=False) | Q(status=RunStatus.RUNNING, heartbeat_at__lt=stale)
    ).update(status=RunStatus.RUNNING, worker=worker, heartbeat_at=now, started_at=now, error="",
             attempts=F("attempts") + 1)
    return TrainingRun.objects.select_related("project").get(pk=run_id) if taken else None


class LostClaim(Exception):
    """Another worker took the run over (ours was presumed dead): stop without writing more."""


class RunMonitor:
    """While a run works: a heartbeat every few seconds, cancellation noticed, progress written."""

    def __init__(self, run: TrainingRun, interval: float = 5.0):
        self.run, self.interval = run, interval
        self.cancelled, self.lost, self._done = threading.Event(), threading.Event(), threading.Event()
        self.history: list[list[float]] = list(run.loss_history)
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"run-{run.id}-heartbeat")

    def __enter__(self) -> "RunMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set()

    def update(self, **fields) -> None:
        if not self._mine().update(heartbeat_at=timezone.now(), **json_safe_fields(fields)):
            self.lost.set()
            raise LostClaim(self.run.id)

    def progress(self, p) -> None:
        self.history.append([p.step, round(p.loss, 6)])
        eta = getattr(p, "eta_s", None)
        self.update(epoch=p.epoch, step=p.step, steps_per_epoch=p.steps_per_epoch, loss=p.loss,
                    images_per_s=round(p.images_per_s, 2), loss_history=self.history,
                    eta_at=None if eta is None else timezone.now() + timedelta(seconds=eta))

    def _mine(self):
        return TrainingRun.objects.filter(pk=self.run.id, worker=self.run.worker, status=RunStatus.RUNNING)

    def _beat(self) -> None:
        try:
            while not self._done.wait(self.interval):
                if not self._mine().update(heartbeat_at=timezone.now()):
                    self.lost.set()
                    return
                if TrainingRun.objects.filter(pk=self.run.id, cancel_requested=True).exists():
                    self.cancelled.set()
        finally:
            connection.close()  # this thread's own connection


def finish(run: TrainingRun, status: str, **fields) -> bool:
    return bool(TrainingRun.objects.filter(pk=run.id, worker=run.worker, status=RunStatus.RUNNING).update(
        status=status, finished_at=timezone.now(), heartbeat_at=timezone.now(), **json_safe_fields(fields)))


def json_safe_fields(fields: dict) -> dict:
    """A run's JSON columns as both databases accept them: SQLite's JSON_VALID and PostgreSQL
    refuse NaN and Infinity, so a non-finite number is stored as null (unknown); numpy scalars
    become plain numbers. Every write of run metrics goes through here."""
    return {k: json_safe(v) if k in ("metrics", "loss_history") else v for k, v in fields.items()}


def json_safe(value):
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def resume_orphans(node: str) -> list[int]:
    """At worker start: runs this node held died with its last process; queue them again, as well
    as runs whose worker went quiet and queued runs whose message may have been lost."""
    stale = timezone.now() - timedelta(seconds=settings.RUN_STALE_SECONDS)
    orphans = TrainingRun.objects.filter(
        Q(status=RunStatus.RUNNING, worker__startswith=f"{node}:") | Q(status=RunStatus.RUNNING, heartbeat_at__lt=stale)
        | Q(status=RunStatus.QUEUED, created_at__lt=stale, cancel_requested=False))
    resumed = []
    for run in orphans:
        if run.status == RunStatus.RUNNING and run.attempts >= settings.RUN_MAX_ATTEMPTS:
            # A run that takes its worker down every time (out of memory, say) must not loop forever.
            TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, worker=run.worker).update(
                status=RunStatus.FAILED, finished_at=timezone.now(),
                error=f"Its worker stopped during each of {run.attempts} attempts; retry it when the cause is fixed.")
            continue
        if run.status == RunStatus.RUNNING:
            if not TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, worker=run.worker).update(
                    status=RunStatus.QUEUED, worker=""):
                continue
        send(run)
        resumed.append(run.id)
    if resumed:
        log.warning("re-queued training runs %s after a worker was lost", resumed)
    return resumed


def note_worker_device() -> None:
    """Tell the web process which device pretraining runs on here (its presets and estimates
    depend on it): written when a worker starts."""
    import json

    import torch

    from labeling.selectors import WORKER_DEVICE_FILE

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    path = Path(settings.MODEL_DIR) / WORKER_DEVICE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"device": device, "at": timezone.now().isoformat()}))
    os.replace(tmp, path)


def send(run: TrainingRun) -> bool:
    """Send a queued run's task now; False when the broker is down (the sweep tries again)."""
    from annotator.tasks import send_now
    from labeling.tasks import fit_probe, gpu_pretrain

    return send_now(gpu_pretrain if run.kind == RunKind.PRETRAIN else fit_probe, run.id, row=run)


# ---------------------------------------------------------------------------------------------
# Pretraining


def run_pretrain(run_id: int, node: str) -> str:
    run = claim(run_id, worker_id(node))
    if run is None:
        return "not claimed"
    try:
        with RunMonitor(run) as monitor:
            status = _pretrain(run, monitor)
    except LostClaim:
        return "lost claim"
    except Exception:
        log.exception("pretraining run %s failed", run_id)
        finish(run, RunStatus.FAILED, error=traceback.format_exc()[-4000:])
        return "failed"
    finally:
        close_old_connections()
    return status


def _pretrain(run: TrainingRun, monitor: RunMonitor) -> str:
    import torch

    from labeling.ml import ModelConfig, PretrainConfig, Runtime, TrainLog, embed_ids, pretrain, step_profiler

    device = "cuda" if torch.cuda.is_available() else "cpu"
    monitor.update(device=torch.cuda.get_device_name(0) if device == "cuda" else "cpu")
    from labeling.services import pretrain_defaults

    # A run's config was completed when it was queued; a time budget is never added afterwards.
    c = {**pretrain_defaults(), "time_budget_s": None, **run.config}
    model = ModelConfig(resolution=c["resolution"], small_stem=c["small_stem"], projector=tuple(c["projector"]))
    config = PretrainConfig(model=model,
                            epochs=c["epochs"], batch_size=c["batch_size"], lr_weights=c["lr_weights"],
                            warmup_epochs=c["warmup_epochs"], seed=c["seed"], crop_scale=(c["crop_min"], 1.0),
                            time_budget_s=c["time_budget_s"])
    cache, ids = fill_cache(run.project_id, c["resolution"])
    if len(ids) < 2:
        finish(run, RunStatus.FAILED, error="The project needs at least two readable images to pretrain on.")
        return "failed"
    # A lazy view of the cache: uploaded whole when it fits PRETRAIN_DATA_ON_DEVICE_MB, else each
    # batch is read from the memory map, so a million-image project is never held in memory.
    images = cache.view(ids)
    on_device = len(ids) * c["resolution"] ** 2 * 3 <= settings.PRETRAIN_DATA_ON_DEVICE_MB * 2**20
    trace = run_dir(run.id) / RUN_FILES["trace"] if c.get("profile") else None
    with TrainLog(run_dir(run.id) / RUN_FILES["tensorboard"]) as board, step_profiler(trace) as on_step:
        def progress(p) -> None:
            board.progress(p)
            monitor.progress(p)

        result = pretrain(config, images, Runtime(
            device=device, checkpoint_path=run_dir(run.id) / "checkpoint.pt", data_on_device=on_device,
            world_size=pretrain_world_size(device), on_progress=progress, should_stop=monitor.should_stop,
            on_step=on_step, log_every=max(1, min(20, len(ids) // c["batch_size"] // 2 or 1)),
            progress_every_s=PROGRESS_EVERY_S))
    if monitor.lost.is_set():
        raise LostClaim(run.id)
    if result.status == "cancelled":
        finish(run, RunStatus.CANCELLED)
        return "cancelled"
    from labeling import shards

    backbone = result.model.backbone
    # The embedding map is drawn from an evenly spaced sample, kept while the blocks are embedded:
    # the whole project's features are never in memory at once.
    sample = ids[np.unique(np.linspace(0, len(ids) - 1, min(len(ids), PROJECTION_POINTS)).astype(np.int64))]
    kept: list[tuple[np.ndarray, np.ndarray]] = []

    def embed(part: np.ndarray) -> np.ndarray:
        features = embed_ids(backbone, cache, part, device=device, **feature_options(c))
        keep = np.isin(part, sample)
        kept.append((part[keep], features[keep]))
        return features

    dim = shards.write_blocks(backbone_run_id=run.id, ids=ids, s=settings.SHARD_IMAGES, embed=embed)
    save_projection(shards.embeddings_dir(run.id), np.concatenate([k[0] for k in kept]),
                    np.concatenate([k[1] for k in kept]))
    with transaction.atomic():
        EmbeddingSet.objects.filter(run=run).delete()
        EmbeddingSet.objects.create(run=run, project_id=run.project_id, path=str(shards.embeddings_dir(run.id)),
                                    resolution=c["resolution"], count=len(ids), dim=dim,
                                    block_size=settings.SHARD_IMAGES)
        metrics = {"final_loss": result.loss_history[-1] if result.loss_history else None, "images": len(ids)}
        if not finish(run, RunStatus.SUCCEEDED, metrics=metrics, epoch=result.epochs_done):
            raise LostClaim(run.id)
        ProjectModelState.objects.update_or_create(project_id=run.project_id, defaults={"pretrain_run": run})
        from labeling.services import probe_start

        probe_start(project=run.project)
    return "succeeded"


def feature_options(config: dict) -> dict:
    """How a run's images become probe features (its config's "features"): "last" (the pooled last
    stage, 512), "multi" (pooled layer2..layer4, 896) or "multi_tta" (that, averaged with the mirror image)."""
    features = config.get("features", "last")
    return {"multi_layer": features in ("multi", "multi_tta"), "flip_tta": features == "multi_tta"}


# Progress (and so the ETA) reaches the database at least this often, however slow a step is.
PROGRESS_EVERY_S = 5.0

# The files a run leaves for people, under its directory (served by the run-files view).
RUN_FILES = {"tensorboard": "tensorboard", "trace": "profile/trace.json"}


def projection_path(embeddings_path: str | Path) -> Path:
    return Path(embeddings_path).with_name("projection.npz")


def save_projection(embeddings_path: str | Path, ids: np.ndarray, features: np.ndarray) -> None:
    """The dashboard's embedding map: 2-D coordinates (float16) row for row with ``ids``, next to the
    embeddings and written atomically."""
    from labeling.ml import project_2d

    path = projection_path(embeddings_path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, ids=np.asarray(ids, dtype=np.int64), xy=project_2d(features))
    os.replace(tmp, path)


# At most this many images on the embedding map (an evenly spaced sample of the project).
PROJECTION_POINTS = 20_000


def pretrain_world_size(device: str) -> int:
    """How many processes pretrain: every visible GPU unless PRETRAIN_GPUS caps it."""
    if device != "cuda":
        return 1
    import torch

    visible = torch.cuda.device_count()
    return max(1, min(visible, settings.PRETRAIN_GPUS or visible))


def project_cache_dir(project_id: int) -> Path:
    """The project's image stores, one sub-folder per resolution (labeling.ml.cache.store_dir)."""
    base = Path(settings.MODEL_DIR) / "cache" / f"project-{project_id}"
    for legacy in ("pixels.u8", "ids.npy"):  # the old single store, of an unknown resolution: never read
        (base / legacy).unlink(missing_ok=True)
    return base


def fill_cache(project_id: int, resolution: int, ids: np.ndarray | None = None, chunk: int = 10_000):
    """The project's images (or these ids of it) decoded once into the cache, ``chunk`` at a time;
    returns the cache and the ids it holds, in id order."""
    from labeling.ml import ImageCache, store_dir

    cache = ImageCache(store_dir(project_cache_dir(project_id), resolution), resolution=resolution)
    if ids is None:
        ids = np.fromiter(Image.objects.filter(project_id=project_id).order_by("id").values_list("id", flat=True),
                          dtype=np.int64)
    missing = cache.missing(ids)
    for start in range(0, len(missing), chunk):
        part = missing[start:start + chunk]
        names = dict(Image.objects.filter(pk__in=part.tolist()).values_list("id", "file"))

        def open_image(image_id: int) -> bytes:
            with default_storage.open(names[image_id], "rb") as handle:
                return handle.read()

        result = cache.add(part, open_image, workers=4)
        for image_id, why in result.failed.items():
            log.warning("image %s could not be cached: %s", image_id, why)
    return cache, ids[np.isin(ids, cache.ids)]


# ---------------------------------------------------------------------------------------------
# The probe and its suggestions


def run_probe(run_id: int, node: str) -> str:
    run = claim(run_id, worker_id(node))
    if run is None:
        return "not claimed"
    try:
        with RunMonitor(run) as monitor:
            return _probe(run, monitor)
    except LostClaim:
        return "lost claim"
    except Exception:
        log.exception("probe run %s failed", run_id)
        finish(run, RunStatus.FAILED, error=traceback.format_exc()[-4000:])
        return "failed"
    finally:
        close_old_connections()


def _probe(run: TrainingRun, monitor: RunMonitor) -> str:
    """Fit on the submitted images' features, then score every block of the project: here, or as
    shard tasks (SUGGEST_PARALLEL), the last of which finishes the run."""
    from labeling import shards
    from labeling.ml import evaluate, fit_probe
    from labeling.ml.probe import learning_curve, untrainable_message
    from labeling.trust import trust_fit

    monitor.update(device="cpu")
    embedding_set = EmbeddingSet.objects.filter(run_id=run.backbone_run_id).order_by("-id").first()
    if embedding_set is None:
        raise RuntimeError(f"pretraining run {run.backbone_run_id} left no embeddings")
    labels = list(run.project.labels.values_list("id", "name"))
    label_ids = np.array([label_id for label_id, _ in labels], dtype=np.int64)
    submitted = np.fromiter(Image.objects.filter(project_id=run.project_id, status=ImageStatus.SUBMITTED)
                            .order_by("id").values_list("id", flat=True), dtype=np.int64)
    labeled, x = shards.features_of(embedding_set=embedding_set, ids=submitted)
    names = [name for _, name in labels]
    if len(labeled) < 2:
        return _nothing_to_fit(run, {"labeled": len(labeled)}, untrainable_message(None, names))
    y = label_matrix(labeled.tolist(), label_ids)
    probe = fit_probe(x.astype(np.float32), y)
    report = probe.label_report(names)
    metrics = {"labeled": len(labeled), "weight_decay": probe.weight_decay, "cv_map": probe.cv_map,
               "labels": report}
    message = untrainable_message(probe, names)
    if message is not None:
        return _nothing_to_fit(run, metrics, message)
    t = probe.trained
    cv = evaluate(y[:, t], probe.oof_scores[:, t], probe.thresholds[t]).to_dict()
    metrics["cv"] = {**cv, "labels": [name for name, trained in zip(names, t) if trained]}
    calibration, confident, metrics["trust"] = trust_fit(
        project_id=run.project_id, y=y, oof=probe.oof_scores, trained=t, ap=cv["ap"], label_ids=label_ids,
        names=names, labeled_ids=labeled, positives=probe.positives)
    metrics["learning_curve"] = learning_curve(x.astype(np.float32), y, weight_decay=probe.weight_decay)
    shards.save_probe(run.id, probe, label_ids, calibration=calibration, confident=confident)
    monitor.update(metrics=metrics)
    log_probe_metrics(run, metrics)
    SuggestionShard.objects.filter(run=run).delete()
    blocks = shards.project_blocks(run.project_id, embedding_set.block_size)
    if settings.SUGGEST_PARALLEL and len(blocks) > 1:
        from annotator.tasks import send_now
        from labeling.tasks import suggest_shard

        # Which blocks make the run whole is kept on the run: the shard that writes the last of
        # them finishes it (shards.finish_if_complete), from the database, not from a chord's
        # counter in the result backend, which a broker restart loses.
        monitor.update(config={**run.config, "suggest_blocks": blocks})
        unsent = [b for b in blocks if not send_now(suggest_shard, run.id, b)]
        if not unsent:
            return "sharded"
        blocks = unsent  # the broker went away: score what it did not take here
        log.warning("probe run %s: scoring blocks %s here, the broker did not take them", run.id, unsent)
    for block in blocks:
        if monitor.lost.is_set():
            raise LostClaim(run.id)
        if monitor.cancelled.is_set():
            finish(run, RunStatus.CANCELLED)
            return "cancelled"
        shards.suggest_block(run.id, block, run.worker)
    return shards.finalise(run.id)


def _nothing_to_fit(run: TrainingRun, metrics: dict, message: str) -> str:
    """A fit after the first few submissions, before any label has 3 of each: nothing to suggest
    yet, which is not a failure. The project keeps the suggestions it has (if any); this run
    writes none and says what it needs."""
    metrics.update(message=message, trust={"still_learning": message})
    if not finish(run, RunStatus.SUCCEEDED, metrics=metrics):
        raise LostClaim(run.id)
    return "succeeded"


def log_probe_metrics(run: TrainingRun, metrics: dict) -> None:
    """The probe's metrics as TensorBoard scalars, in its own run's events and in its backbone's
    (step: the number of labeled images), so a pretraining's events show how good its probes were."""
    from labeling.ml import TrainLog

    cv = metrics.get("cv") or {}
    values = {"probe/map": cv.get("map"),
              "probe/micro_f1": cv.get("micro_f1"), "probe/macro_f1": cv.get("macro_f1")}
    for name, ap, f1 in zip(cv.get("labels", []), cv.get("ap", []), cv.get("f1", [])):
        values[f"probe_ap/{name}"] = ap
        values[f"probe_f1/{name}"] = f1
    for owner in (run.id, run.backbone_run_id):
        if owner is not None:
            with TrainLog(run_dir(owner) / RUN_FILES["tensorboard"]) as board:
                board.scalars(values, step=int(metrics.get("labeled", 0)))


def label_matrix(image_ids: list[int], label_ids: np.ndarray) -> np.ndarray:
    """(images, labels) 0/1: a label is present when the image has a box of it or a tag of it."""
    column = {int(label_id): j for j, label_id in enumerate(label_ids)}
    row = {image_id: n for n, image_id in enumerate(image_ids)}
    y = np.zeros((len(image_ids), len(label_ids)), dtype=np.float32)
    for model in (Box, ImageTag):
        pairs = model.objects.filter(image_id__in=image_ids).values_list("image_id", "label_id").distinct()
        for image_id, label_id in pairs.iterator(chunk_size=10_000):
            y[row[image_id], column[label_id]] = 1
    return y
