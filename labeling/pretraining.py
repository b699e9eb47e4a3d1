"""A pretraining run on a worker: claim it, train the backbone on the project's cached images,
embed every image block by block, draw the embedding map, and queue the first probe fit.

A long pretraining does not hold the worker: past TRAINING_SLICE_S seconds, when other runs wait, it
writes a checkpoint at its next step and goes back to the queue (``runs.paused``), to resume from there.

Worker-side code: torch and the torch-backed ``labeling.ml`` modules are imported inside the
functions, because the web process imports this module (through ``labeling.tasks``) to send work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from labeling.config import PROGRESS_EVERY_S, PROJECTION_POINTS, pretrain_defaults
from labeling.curation import ann_write, diverse_write, duplicates_write
from labeling.data import fill_cache, write_blocks
from labeling.ml.files import replaced
from labeling.ml.presets import device_kind, feature_options, should_compile, training_seconds
from labeling.models import CurationScore, EmbeddingSet, ProjectModelState, RunKind, RunStatus, TrainingRun
from labeling.paths import checkpoint_path, embeddings_dir, projection_path, run_file
from labeling.runs import LostClaim, RunMonitor, finish, pause_check, paused, probe_create, run_claimed

log = logging.getLogger(__name__)


def run_pretrain(
    run_id: int,
    node: str,
    *,
    send: Callable[[TrainingRun], object],
    curate: Callable[[TrainingRun], object] | None = None,
    send_later: Callable[[TrainingRun], object] | None = None,
) -> str:
    """``send``: how the probe fit queued at the end is sent once committed (labeling.tasks.run_enqueue).
    ``curate``: how the rankings drawn from the new embeddings are made (labeling.tasks.curation_send
    queues them behind that probe fit; default: here, after the run). ``send_later``: how the run is
    queued again when it pauses for waiting runs (labeling.tasks.run_send_later; None: it never
    pauses)."""
    status = run_claimed(run_id, node, lambda run, monitor: _pretrain(run, monitor, send, send_later))
    if status == "succeeded":
        run = TrainingRun.objects.get(pk=run_id)
        (curate or curation_write)(run)
    return status


def _pretrain(
    run: TrainingRun,
    monitor: RunMonitor,
    send: Callable[[TrainingRun], object],
    send_later: Callable[[TrainingRun], object] | None,
) -> str:
    import torch

    from labeling.ml.backbone import ModelConfig
    from labeling.ml.tracking import TrainLog, step_profiler
    from labeling.ml.train import PretrainConfig, Runtime, pretrain

    device = "cuda" if torch.cuda.is_available() else "cpu"
    monitor.update(device=torch.cuda.get_device_name(0) if device == "cuda" else "cpu")
    # A run's config was completed when it was queued; a time budget is never added afterwards, and a
    # run queued before "colour" existed trained (and checkpointed) with the reference's colours.
    c = {**pretrain_defaults(), "time_budget_s": None, "colour": "reference", **run.config}
    model = ModelConfig(resolution=c["resolution"], small_stem=c["small_stem"], projector=tuple(c["projector"]))
    config = PretrainConfig(
        model=model,
        epochs=c["epochs"],
        batch_size=c["batch_size"],
        lr_weights=c["lr_weights"],
        warmup_epochs=c["warmup_epochs"],
        seed=c["seed"],
        crop_scale=(c["crop_min"], 1.0),
        colour=c["colour"],
        time_budget_s=c["time_budget_s"],
    )
    cache, ids = fill_cache(run.project_id, c["resolution"])
    if len(ids) < 2:
        finish(run, RunStatus.FAILED, error="The project needs at least two readable images to pretrain on.")
        return "failed"
    # A lazy view of the cache: uploaded whole when it fits PRETRAIN_DATA_ON_DEVICE_MB, else each
    # batch is read from the memory map, so a million-image project is never held in memory.
    images = cache.view(ids)
    on_device = len(ids) * c["resolution"] ** 2 * 3 <= settings.PRETRAIN_DATA_ON_DEVICE_MB * 2**20
    trace = run_file(run.id, "trace") if c.get("profile") else None
    world_size = pretrain_world_size(device)
    compiled = _compiled(c, images=len(ids), device=device, processes=world_size)
    if compiled:
        log.info("pretraining %s: compiling the step (a long run on a GPU)", run.id)
    with TrainLog(run_file(run.id, "tensorboard")) as board, step_profiler(trace) as on_step:

        def progress(p) -> None:
            board.progress(p)
            monitor.progress(p)

        result = pretrain(
            config,
            images,
            Runtime(
                device=device,
                checkpoint_path=checkpoint_path(run.id),
                data_on_device=on_device,
                world_size=world_size,
                compile=compiled,
                on_progress=progress,
                should_stop=monitor.should_stop,
                should_yield=pause_check(run.id, send_later),
                on_step=on_step,
                log_every=max(1, min(20, len(ids) // c["batch_size"] // 2 or 1)),
                progress_every_s=PROGRESS_EVERY_S,
            ),
        )
    if monitor.lost.is_set():
        raise LostClaim(run.id)
    if result.status == "cancelled":
        finish(run, RunStatus.CANCELLED)
        return "cancelled"
    if result.status == "yielded" and send_later is not None:
        return paused(run, f"step {len(result.loss_history)}", send_later)
    dim = _embed_all(run, result.model.backbone, cache, ids, c, device)
    with transaction.atomic():
        EmbeddingSet.objects.filter(run=run).delete()
        EmbeddingSet.objects.create(
            run=run,
            project_id=run.project_id,
            path=str(embeddings_dir(run.id)),
            resolution=c["resolution"],
            count=len(ids),
            dim=dim,
            block_size=settings.SHARD_IMAGES,
        )
        metrics = {
            "final_loss": result.loss_history[-1] if result.loss_history else None,
            "images": len(ids),
            "compiled": compiled,
        }
        if not finish(run, RunStatus.SUCCEEDED, metrics=metrics, epoch=result.epochs_done):
            raise LostClaim(run.id)
        ProjectModelState.objects.update_or_create(project_id=run.project_id, defaults={"pretrain_run": run})
        probe = probe_create(project=run.project, backbone_run_id=run.id)
        if probe is not None:
            send(probe)
    return "succeeded"


def curation_run(run_id: int) -> str:
    """The task's side of curation_write: the rankings of a succeeded pretraining (a message for a
    run since deleted, or of another status, does nothing)."""
    run = TrainingRun.objects.filter(pk=run_id, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED).first()
    if run is None:
        return "gone"
    curation_write(run)
    return "written"


def curation_write(run: TrainingRun) -> None:
    """The cold start's "diverse" order, the near-duplicate groups and (on large projects) the
    nearest-neighbour index from the new embeddings, after the run succeeded (each takes up to
    minutes at their caps in labeling/curation.py; the queue falls back to id order and more like
    this to the exact search meanwhile). A worker runs them after the probe fit the run queued
    (labeling.tasks.curation_send): on a lent H200 with one worker process they took 65 s for
    1,000 images while the first suggestions waited (bench/results/gpu_app_h200.json).
    A failure is logged, never the run's."""
    for what, write in (("diverse", diverse_write), ("duplicate", duplicates_write)):
        try:
            write(backbone_run_id=run.id)
            CurationScore.objects.filter(run__project_id=run.project_id, kind=what, run_id__lt=run.id).delete()
        except Exception:
            log.exception("pretraining %s: the %s ranking could not be written", run.id, what)
    try:  # large projects: more like this reads an approximate index (labeling/curation.py)
        ann_write(backbone_run_id=run.id)
    except Exception:
        log.exception("pretraining %s: the nearest-neighbour index could not be built", run.id)


def _embed_all(run: TrainingRun, backbone, cache, ids: np.ndarray, c: dict, device: str) -> int:
    """Every image's features, one block file at a time, and the embedding map drawn from an evenly
    spaced sample kept meanwhile: the whole project's features are never in memory at once."""
    from labeling.ml.embed import embed_ids

    sample = ids[np.unique(np.linspace(0, len(ids) - 1, min(len(ids), PROJECTION_POINTS)).astype(np.int64))]
    kept: list[tuple[np.ndarray, np.ndarray]] = []

    def embed(part: np.ndarray) -> np.ndarray:
        features = embed_ids(backbone, cache, part, device=device, **feature_options(c))
        keep = np.isin(part, sample)
        kept.append((part[keep], features[keep]))
        return features

    dim = write_blocks(backbone_run_id=run.id, ids=ids, s=settings.SHARD_IMAGES, embed=embed)
    save_projection(embeddings_dir(run.id), np.concatenate([k[0] for k in kept]), np.concatenate([k[1] for k in kept]))
    return dim


def save_projection(embeddings_path: str | Path, ids: np.ndarray, features: np.ndarray) -> None:
    """The dashboard's embedding map: 2-D coordinates (float16) row for row with ``ids``, next to the
    embeddings and written atomically; PCA of them all ("xy"), and UMAP of at most MAP_UMAP_POINTS
    of them ("umap_ids", "umap") unless umap-learn fails (logged: the map keeps PCA)."""
    from labeling.ml.projection import project_2d, project_umap

    ids = np.asarray(ids, dtype=np.int64)
    arrays = {"ids": ids, "xy": project_2d(features)}
    points = min(len(ids), settings.MAP_UMAP_POINTS)
    try:
        if points:
            pick = np.sort(np.random.default_rng(0).choice(len(ids), points, replace=False))
            arrays.update(umap_ids=ids[pick], umap=project_umap(np.asarray(features)[pick]))
    except Exception:
        log.exception("the UMAP map could not be computed; the map keeps PCA")
    with replaced(projection_path(embeddings_path)) as f:
        np.savez(f, **arrays)


def _compiled(c: dict, *, images: int, device: str, processes: int) -> bool:
    """PRETRAIN_COMPILE: on, off, or auto (should_compile on the run's estimated training time)."""
    if settings.PRETRAIN_COMPILE != "auto":
        return settings.PRETRAIN_COMPILE == "on"
    kind = device_kind(device)
    training = training_seconds(config=c, images=images, kind=kind)
    return should_compile(kind=kind, eager_estimate_s=training, processes=processes)


def pretrain_world_size(device: str) -> int:
    """How many processes pretrain: every visible GPU unless PRETRAIN_GPUS caps it."""
    if device != "cuda":
        return 1
    import torch

    visible = torch.cuda.device_count()
    return max(1, min(visible, settings.PRETRAIN_GPUS or visible))
