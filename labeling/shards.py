"""Embeddings and suggestions in shards of image ids, so that no process holds a whole project.

A shard ("block") is the id range [k * S, (k + 1) * S), S = settings.SHARD_IMAGES when the
pretraining ran (kept on its EmbeddingSet, since the files are laid out by it). A pretraining run's
features live in one file per block (``runs/<run>/embeddings/block-<k>.npz``);
a probe run fits on the submitted images' features (read block by block), saves the probe, and
then scores each block: in this process one block after the other, or, with
SUGGEST_PARALLEL, as ``suggest_shard`` tasks that any worker may take; the one that writes the
last block (counted in SuggestionShard rows, not by a chord in the result backend) swaps the run in. A block's rows are computed from that block alone
and written for that block alone, so the result is the same however the blocks are spread.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from annotator.models import Image
from labeling.models import (EmbeddingSet, ImageUncertainty, ProjectModelState, RunKind, RunStatus, Suggestion,
                             SuggestionShard, TrainingRun)

log = logging.getLogger(__name__)


def project_blocks(project_id: int, s: int) -> list[int]:
    """The blocks of ``s`` ids that hold at least one of the project's images, in order (one
    index-only scan)."""
    rows = (Image.objects.filter(project_id=project_id).annotate(block=F("id") / s)
            .values_list("block", flat=True).distinct().order_by("block"))
    return [int(b) for b in rows]


def block_ids(project_id: int, block: int, s: int, statuses=None) -> np.ndarray:
    images = Image.objects.filter(project_id=project_id, id__gte=block * s, id__lt=(block + 1) * s)
    if statuses is not None:
        images = images.filter(status__in=statuses)
    return np.fromiter(images.order_by("id").values_list("id", flat=True), dtype=np.int64)


def embeddings_dir(backbone_run_id: int) -> Path:
    from labeling.pipeline import run_dir

    return run_dir(backbone_run_id) / "embeddings"


def block_path(backbone_run_id: int, block: int) -> Path:
    return embeddings_dir(backbone_run_id) / f"block-{block:07d}.npz"


def write_blocks(*, backbone_run_id: int, ids: np.ndarray, s: int,
                 embed: Callable[[np.ndarray], np.ndarray]) -> int:
    """Embed ``ids`` (sorted) in blocks of ``s`` ids, one file per block; returns the feature width."""
    from labeling.ml import save_embeddings

    dim = 0
    for block in np.unique(ids // s):
        part = ids[ids // s == block]
        features = embed(part)
        dim = features.shape[1]
        save_embeddings(block_path(backbone_run_id, int(block)), part, features)
    return dim


def block_features(*, embedding_set: EmbeddingSet, block: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features of those ``ids`` (all in ``block``) that can be had: the block file's rows, and
    images imported after the pretraining embedded now and added to the file. Returns (ids, features)."""
    from labeling.ml import load_embeddings, save_embeddings

    path = block_path(embedding_set.run_id, block)
    have_ids, have = load_embeddings(path) if path.exists() else (np.zeros(0, np.int64), None)
    new = np.setdiff1d(ids, have_ids)
    if len(new):
        new_ids, new_features = _embed_new(embedding_set, new)
        if len(new_ids):
            have_ids = np.concatenate([have_ids, new_ids])
            have = new_features if have is None else np.concatenate([have, new_features])
            order = np.argsort(have_ids, kind="stable")
            have_ids, have = have_ids[order], have[order]
            save_embeddings(path, have_ids, have)
            EmbeddingSet.objects.filter(pk=embedding_set.pk).update(count=F("count") + len(new_ids))
    if have is None:
        return np.zeros(0, np.int64), np.zeros((0, embedding_set.dim), np.float16)
    keep = np.isin(have_ids, ids)
    return have_ids[keep], have[keep]


def _embed_new(embedding_set: EmbeddingSet, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from labeling.ml import embed_ids, load_backbone, load_checkpoint
    from labeling.pipeline import fill_cache, run_dir

    cache, cached = fill_cache(embedding_set.project_id, embedding_set.resolution, ids=ids)
    if not len(cached):
        return cached, np.zeros((0, embedding_set.dim), np.float16)
    config, checkpoint = load_checkpoint(run_dir(embedding_set.run_id) / "checkpoint.pt")
    backbone = load_backbone(checkpoint["model"], config.model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    from labeling.models import TrainingRun
    from labeling.pipeline import feature_options

    run_config = TrainingRun.objects.filter(pk=embedding_set.run_id).values_list("config", flat=True).first() or {}
    return cached, embed_ids(backbone, cache, cached, device=device, **feature_options(run_config))


def features_of(*, embedding_set: EmbeddingSet, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features of any of the project's ids (sorted), read one block at a time."""
    s = embedding_set.block_size
    out_ids, out = [np.zeros(0, np.int64)], [np.zeros((0, embedding_set.dim), np.float16)]
    for block in np.unique(ids // s):
        got_ids, got = block_features(embedding_set=embedding_set, block=int(block), ids=ids[ids // s == block])
        out_ids.append(got_ids)
        out.append(got)
    return np.concatenate(out_ids), np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# The probe, saved for the shard tasks


def probe_path(run_id: int) -> Path:
    from labeling.pipeline import run_dir

    return run_dir(run_id) / "probe.npz"


def save_probe(run_id: int, probe, label_ids: np.ndarray, *, calibration=None, confident: np.ndarray | None = None) -> None:
    """The probe, its per-label calibration (Platt a, b) and confident thresholds (on the
    calibrated scale, +inf: never pre-ticked); ``thresholds`` stay the F1 ones the uncertainty uses."""
    path = probe_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    labels = len(label_ids)
    np.savez(buffer, mean=probe.mean, std=probe.std, weight=probe.weight, bias=probe.bias,
             thresholds=probe.thresholds, trained=probe.trained, label_ids=label_ids,
             calibration_a=np.ones(labels) if calibration is None else calibration.a,
             calibration_b=np.zeros(labels) if calibration is None else calibration.b,
             confident=probe.thresholds if confident is None else confident)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)


def load_probe(run_id: int) -> dict[str, np.ndarray]:
    with np.load(probe_path(run_id)) as data:
        return {k: data[k] for k in data.files}


def calibrate(probe: dict[str, np.ndarray], probs: np.ndarray) -> np.ndarray:
    """The saved probe's calibration applied to its raw probabilities (identity for an old file)."""
    from labeling.ml.calibrate import Platt

    if "calibration_a" not in probe:
        return probs
    return Platt(probe["calibration_a"], probe["calibration_b"]).apply(probs)


def predict(probe: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    """The saved probe's LinearProbe.predict_proba (uncalibrated): (N, D) -> (N, L) float32."""
    from labeling.ml import LinearProbe

    none = np.zeros(len(probe["label_ids"]), np.int64)
    return LinearProbe(mean=probe["mean"], std=probe["std"], weight=probe["weight"], bias=probe["bias"],
                       thresholds=probe["thresholds"], trained=probe["trained"], positives=none, negatives=none,
                       weight_decay=0.0).predict_proba(features)


# ---------------------------------------------------------------------------------------------
# One shard, and the end of a run


def suggest_block(run_id: int, block: int, worker: str) -> str:
    """Score the unlabeled images of one block and write their suggestions (idempotent)."""
    from labeling.ml import uncertainty
    from labeling.pipeline import UNLABELED_STATUSES

    run = TrainingRun.objects.get(pk=run_id)
    if not TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now()):
        return "not running"
    embedding_set = EmbeddingSet.objects.filter(run_id=run.backbone_run_id).order_by("-id").first()
    probe = load_probe(run_id)
    s = embedding_set.block_size
    pool, features = block_features(embedding_set=embedding_set, block=block,
                                     ids=block_ids(run.project_id, block, s, UNLABELED_STATUSES))
    raw = predict(probe, features) if len(pool) else np.zeros((0, len(probe["label_ids"])), np.float32)
    scores = uncertainty(raw, probe["thresholds"]) if len(pool) else np.zeros(0)
    # What people see is calibrated, and pre-ticked only at the label's precision-targeted threshold.
    probs = calibrate(probe, raw)
    with transaction.atomic():
        Suggestion.objects.filter(run_id=run_id, image_id__gte=block * s, image_id__lt=(block + 1) * s).delete()
        ImageUncertainty.objects.filter(run_id=run_id, image_id__gte=block * s, image_id__lt=(block + 1) * s).delete()
        write_suggestions(run_id=run_id, pool=pool, label_ids=probe["label_ids"], probs=probs,
                          thresholds=probe.get("confident", probe["thresholds"]), trained=probe["trained"],
                          scores=scores)
        SuggestionShard.objects.update_or_create(run_id=run_id, block=block,
                                                 defaults={"worker": worker, "images": len(pool),
                                                           "finished_at": timezone.now()})
    TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now())
    return f"block {block}: {len(pool)} images"


def finish_if_complete(run_id: int) -> str | None:
    """After a shard task wrote its block (committed): if every block the run listed is written,
    finish the run. Two last shards may both see it complete; ``finalise`` lets one win."""
    run = TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).values_list("config", flat=True).first()
    blocks = (run or {}).get("suggest_blocks")
    if not blocks or SuggestionShard.objects.filter(run_id=run_id, block__in=blocks).count() < len(blocks):
        return None
    return finalise(run_id)


def finalise(run_id: int) -> str:
    """Every shard is written: the run succeeds and its suggestions replace the old ones at once."""
    run = TrainingRun.objects.get(pk=run_id)
    with transaction.atomic():
        if not TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
                status=RunStatus.SUCCEEDED, finished_at=timezone.now(), heartbeat_at=timezone.now()):
            return "not running"
        ProjectModelState.objects.update_or_create(project_id=run.project_id, defaults={"probe_run": run})
    # The old runs' rows are invisible from the swap on; remove them after it.
    old = TrainingRun.objects.filter(project_id=run.project_id, kind=RunKind.PROBE, id__lt=run.id)
    Suggestion.objects.filter(run__in=old).delete()
    ImageUncertainty.objects.filter(run__in=old).delete()
    return "succeeded"


def write_suggestions(*, run_id: int, pool: np.ndarray, label_ids: np.ndarray, probs: np.ndarray,
                      thresholds: np.ndarray, trained: np.ndarray, scores: np.ndarray) -> int:
    """Insert the suggestion rows of the trained labels and one uncertainty per image; COPY on
    PostgreSQL (a million images x six labels in a minute, not an hour), bulk_create elsewhere."""
    columns = np.flatnonzero(trained)
    if not len(pool):
        return 0
    image = np.repeat(np.asarray(pool, np.int64), len(columns))
    label = np.tile(np.asarray(label_ids, np.int64)[columns], len(pool))
    p = probs[:, columns].reshape(-1).astype(np.float64)
    predicted = (probs[:, columns] >= thresholds[columns]).reshape(-1)
    if connection.vendor == "postgresql":
        _copy(Suggestion, ["run_id", "image_id", "label_id", "probability", "predicted"],
              zip([run_id] * len(image), image.tolist(), label.tolist(), p.tolist(), predicted.tolist()))
        _copy(ImageUncertainty, ["run_id", "image_id", "score"],
              zip([run_id] * len(pool), np.asarray(pool).tolist(), np.asarray(scores, np.float64).tolist()))
    else:
        Suggestion.objects.bulk_create(
            (Suggestion(run_id=run_id, image_id=i, label_id=j, probability=q, predicted=bool(k))
             for i, j, q, k in zip(image.tolist(), label.tolist(), p.tolist(), predicted.tolist())), batch_size=5000)
        ImageUncertainty.objects.bulk_create(
            [ImageUncertainty(run_id=run_id, image_id=i, score=float(s)) for i, s in zip(pool.tolist(), scores)],
            batch_size=5000)
    return len(image)


def _copy(model, columns: list[str], rows) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
