"""From the database and storage to arrays: the label matrix, the image cache, and the embedding
store the probe reads.

A shard ("block") is the id range [k * S, (k + 1) * S), S = settings.SHARD_IMAGES when the
pretraining ran (kept on its EmbeddingSet, since the files are laid out by it). A pretraining run's
features live in one file per block (``labeling.paths.block_path``), so no process holds a whole
project's features; images imported after the pretraining are embedded when first read.

Worker-side code: torch-backed ``labeling.ml`` modules are imported inside the functions that use
them, because the web process imports this module (through ``labeling.tasks``) to send work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import F

from annotator.models import UNSUBMITTED_STATUSES, Box, Image, ImageStatus, ImageTag
from labeling.ml.presets import feature_options
from labeling.ml.cache import ImageCache, store_dir
from labeling.models import EmbeddingSet, TrainingRun
from labeling.paths import block_path, checkpoint_path, project_cache_dir

log = logging.getLogger(__name__)

# The images a probe run scores: every one not submitted yet (a skipped image may come back).
SCORED_STATUSES = UNSUBMITTED_STATUSES  # every image not yet submitted gets suggestions


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


def submitted_ids(project_id: int) -> np.ndarray:
    return np.fromiter(
        Image.objects.filter(project_id=project_id, status=ImageStatus.SUBMITTED)
        .order_by("id")
        .values_list("id", flat=True),
        dtype=np.int64,
    )


def fill_cache(
    project_id: int, resolution: int, ids: np.ndarray | None = None, chunk: int = 10_000, fit: str = "square"
) -> tuple[ImageCache, np.ndarray]:
    """The project's images (or these ids of it) decoded once into the cache, ``chunk`` at a time;
    returns the cache and the ids it holds, in id order (in the order given when ``ids`` are).
    ``fit="letterbox"``: the detector's store (labeling.ml.cache.decode_letterbox) of the originals,
    whose boxes are in their pixels; the pretraining's squares may come from a photo's thumbnail."""
    cache = ImageCache(store_dir(project_cache_dir(project_id), resolution, fit), resolution=resolution, fit=fit)
    if ids is None:
        ids = np.fromiter(
            Image.objects.filter(project_id=project_id).order_by("id").values_list("id", flat=True), dtype=np.int64
        )
    missing = cache.missing(ids)
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        names = {
            image_id: file
            if fit == "letterbox"
            else cache_source(file=file, thumbnail=thumbnail, width=w, height=h, resolution=resolution)
            for image_id, file, thumbnail, w, h in Image.objects.filter(pk__in=part.tolist()).values_list(
                "id", "file", "thumbnail", "width", "height"
            )
        }

        def open_image(image_id: int) -> bytes:
            with default_storage.open(names[image_id], "rb") as handle:
                return handle.read()

        result = cache.add(part, open_image, workers=4)
        for image_id, why in result.failed.items():
            log.warning("image %s could not be cached: %s", image_id, why)
    return cache, ids[np.isin(ids, cache.ids)]


# The training cache reads a photo's import thumbnail when the photo is at least this many times the
# thumbnail's size: decoding a 12-megapixel JPEG again (even DCT-scaled) costs ~50x a 256 px one, and
# the 256 px thumbnail already holds more than a 64-192 px cache keeps. Smaller originals (the demo's
# 128 px PNGs) are read as stored, losslessly.
THUMBNAIL_SOURCE_FACTOR = 4


def cache_source(*, file: str, thumbnail: str, width: int, height: int, resolution: int) -> str:
    """The stored file the training cache decodes for one image: its thumbnail (made upright at import,
    JPEG, longer side settings.THUMBNAIL_SIZE) when the original is a big photo whose thumbnail's
    shorter side still covers ``resolution``; otherwise the original."""
    size = settings.THUMBNAIL_SIZE
    longer, shorter = max(width, height), min(width, height)
    if thumbnail and longer >= THUMBNAIL_SOURCE_FACTOR * size and shorter * size / longer >= resolution:
        return thumbnail
    return file


# ---------------------------------------------------------------------------------------------
# Blocks of image ids, and the embedding store


def project_blocks(project_id: int, s: int) -> list[int]:
    """The blocks of ``s`` ids that hold at least one of the project's images, in order (one
    index-only scan)."""
    rows = (
        Image.objects.filter(project_id=project_id)
        .annotate(block=F("id") / s)
        .values_list("block", flat=True)
        .distinct()
        .order_by("block")
    )
    return [int(b) for b in rows]


def block_ids(project_id: int, block: int, s: int, statuses=None) -> np.ndarray:
    images = Image.objects.filter(project_id=project_id, id__gte=block * s, id__lt=(block + 1) * s)
    if statuses is not None:
        images = images.filter(status__in=statuses)
    return np.fromiter(images.order_by("id").values_list("id", flat=True), dtype=np.int64)


def embedding_set_of(backbone_run_id: int | None) -> EmbeddingSet | None:
    """The embeddings a pretraining run left (the newest, should a retry have written two)."""
    return EmbeddingSet.objects.filter(run_id=backbone_run_id).order_by("-id").first()


def write_blocks(*, backbone_run_id: int, ids: np.ndarray, s: int, embed: Callable[[np.ndarray], np.ndarray]) -> int:
    """Embed ``ids`` (sorted) in blocks of ``s`` ids, one file per block; returns the feature width."""
    from labeling.ml.embed import save_embeddings

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
    from labeling.ml.embed import load_embeddings, save_embeddings

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

    from labeling.ml.backbone import load_backbone
    from labeling.ml.embed import embed_ids
    from labeling.ml.train import load_checkpoint

    cache, cached = fill_cache(embedding_set.project_id, embedding_set.resolution, ids=ids)
    if not len(cached):
        return cached, np.zeros((0, embedding_set.dim), np.float16)
    config, checkpoint = load_checkpoint(checkpoint_path(embedding_set.run_id))
    backbone = load_backbone(checkpoint["model"], config.model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
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
