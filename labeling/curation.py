"""Curation from the current backbone's stored embeddings (the math is labeling/ml/curation.py):
more like this, and the queue's diverse and hybrid orders and the likely-mistakes ranking, which
workers compute after a run and keep as CurationScore rows.

Nearest neighbours are exact, in torch, over the per-block float16 files, below ANN_MIN_IMAGES. The
web process keeps each block it read as unit rows in float16 (``_unit_block``, keyed by the file's
path and mtime so a rewritten block is read again): 100,000 images x 512 features are 100 MB and a
query costs one matrix-vector product over them (bench/curation.py measures it). From ANN_MIN_IMAGES
on, the worker builds an approximate index after the pretraining (labeling.ml.ann, beside the
blocks) and a query reads it, plus the block of the query image and the rows added since the index
was built (images imported later), searched exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from labeling.data import embedding_set_of
from labeling.models import EmbeddingSet
from labeling.paths import embeddings_dir
from labeling.runs import current_backbone_run_id

# Blocks (of EmbeddingSet.block_size ids, 50,000 by default) kept in memory per web process.
CACHED_BLOCKS = 24


class NotEmbedded(Exception):
    """The image has no embedding (no pretraining yet, or imported after it)."""


def current_embeddings(*, project_id: int) -> EmbeddingSet | None:
    return embedding_set_of(current_backbone_run_id(project_id=project_id))


def _block_files(embedding_set: EmbeddingSet) -> list[Path]:
    return sorted(embeddings_dir(embedding_set.run_id).glob("block-*.npz"))


@functools.lru_cache(maxsize=CACHED_BLOCKS)
def _unit_block(path: str, mtime_ns: int) -> tuple[np.ndarray, np.ndarray]:
    from labeling.ml.curation import unit_half
    from labeling.ml.embed import load_embeddings

    ids, features = load_embeddings(path)
    return ids, unit_half(features)


def unit_blocks(embedding_set: EmbeddingSet) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every block of the set as (ids, float16 unit rows), from the process's cache."""
    out = []
    for path in _block_files(embedding_set):
        try:
            out.append(_unit_block(str(path), path.stat().st_mtime_ns))
        except FileNotFoundError:  # replaced between the listing and the read: skip it this time
            continue
    return out


def feature_of(embedding_set: EmbeddingSet, blocks: list[tuple[np.ndarray, np.ndarray]], image_id: int) -> np.ndarray:
    """The image's unit feature row (1, D); NotEmbedded when no block holds it."""
    for ids, features in blocks:
        at = np.searchsorted(ids, image_id)
        if at < len(ids) and ids[at] == image_id:
            return features[at : at + 1]
    raise NotEmbedded(image_id)


def similar_ids(*, project_id: int, image_id: int, k: int) -> tuple[int, list[tuple[int, float]]] | None:
    """The ``k`` images most like ``image_id`` (cosine of the current backbone's embeddings, the
    image itself left out), most similar first: (backbone run id, [(image id, similarity)]).
    Exact below ANN_MIN_IMAGES, by the run's approximate index from there (exact while it has none).
    None before any pretraining; NotEmbedded when the image has no embedding yet."""
    from labeling.ml.curation import nearest

    embedding_set = current_embeddings(project_id=project_id)
    if embedding_set is None:
        return None
    index = _ann_index(embedding_set) if embedding_set.count >= ANN_MIN_IMAGES else None
    if index is None:
        blocks = unit_blocks(embedding_set)
        query = feature_of(embedding_set, blocks, image_id)
        found = nearest(query, blocks, k=k + 1, unit=True)
        pairs = [(int(i), float(s)) for i, s in zip(found.ids[0], found.scores[0]) if i >= 0 and i != image_id]
    else:
        pairs = _ann_similar(embedding_set, index, image_id, k + 1)
    return embedding_set.run_id, [(i, s) for i, s in pairs if i != image_id][:k]


# ---------------------------------------------------------------------------------------------
# The approximate index of large projects (labeling.ml.ann)

# From this many embedded images on, more like this reads the approximate index. The exact search's
# p95 was 96 ms at 100,000 vectors and 762 ms at 1M on this 2-core machine (bench/results/
# curation_speed.json, load 5; 351 and 2,187 ms at load 6 in curation_ann.json): it meets the 100 ms
# target up to about here, grows linearly, and is exact; the index answers in under 35 ms at 100k
# and 1M but may miss neighbours (recall@10 0.64-0.995 at 100k, by how clustered the rows are).
ANN_MIN_IMAGES = 100_000


def ann_write(*, backbone_run_id: int) -> int:
    """After a pretraining of ANN_MIN_IMAGES images or more: its approximate nearest-neighbour index,
    beside the blocks, centroids trained on a sample, then filled block by block. Returns the rows."""
    from labeling.ml.ann import AnnConfig, ann_build, lists_for
    from labeling.ml.embed import load_embeddings
    from labeling.paths import ann_path

    embedding_set = embedding_set_of(backbone_run_id)
    if embedding_set is None or embedding_set.count < ANN_MIN_IMAGES:
        return 0
    config = AnnConfig()
    _, sample = _stored_features(embedding_set, lists_for(embedding_set.count, config) * config.train_per_list)
    blocks = (load_embeddings(path) for path in _block_files(embedding_set))
    meta = ann_build(ann_path(backbone_run_id), sample, blocks, rows=embedding_set.count, config=config)
    return int(meta["rows"])


@functools.lru_cache(maxsize=2)
def _ann_loaded(path: str, mtime_ns: int):
    from labeling.ml.ann import ann_load

    return ann_load(Path(path))


def _ann_index(embedding_set: EmbeddingSet):
    from labeling.paths import ann_path

    path = ann_path(embedding_set.run_id)
    try:
        return _ann_loaded(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:  # not built (yet): the exact search serves meanwhile
        return None


def _ann_similar(embedding_set: EmbeddingSet, index, image_id: int, k: int) -> list[tuple[int, float]]:
    """The index's k nearest, merged with an exact search over the rows added after it was built
    (ids above the largest it holds: images embedded since, in the last blocks)."""
    from labeling.ml.curation import nearest

    own = unit_blocks_of(embedding_set, lambda block: block == image_id // embedding_set.block_size)
    query = feature_of(embedding_set, own, image_id)
    found = index.search(query, k)
    pairs = {int(i): float(s) for i, s in zip(found.ids[0], found.scores[0]) if i >= 0}
    first_new = (index.max_id + 1) // embedding_set.block_size
    newer = []
    for ids, features in unit_blocks_of(embedding_set, lambda block: block >= first_new):
        keep = ids > index.max_id
        if keep.any():
            newer.append((ids[keep], features[keep]))
    if newer:
        extra = nearest(query, newer, k=k, unit=True)
        pairs.update({int(i): float(s) for i, s in zip(extra.ids[0], extra.scores[0]) if i >= 0})
    return sorted(pairs.items(), key=lambda pair: -pair[1])[:k]


def unit_blocks_of(embedding_set: EmbeddingSet, wanted: Callable[[int], bool]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The set's blocks whose number ``wanted`` accepts, as unit rows, from the process's cache."""
    out = []
    for path in _block_files(embedding_set):
        if not wanted(int(path.stem.split("-")[1])):
            continue
        try:
            out.append(_unit_block(str(path), path.stat().st_mtime_ns))
        except FileNotFoundError:  # replaced between the listing and the read: skip it this time
            continue
    return out


# ---------------------------------------------------------------------------------------------
# Rankings a worker writes after a run (CurationScore rows, read by the queue's orders)

DIVERSE_PICKS = 1000  # greedy k-center picks of the cold start; the rest follow by distance
RANKED_MAX = 200_000  # images a diverse ranking covers at most (a seeded sample beyond)
CENTRES_MAX = 20_000  # labelled images that count as covered, at most (a seeded sample beyond)
HYBRID_PICKS = 500  # picks per probe fit, from the HYBRID_POOL_FACTOR x as many most uncertain
HYBRID_POOL_FACTOR = 4


def _sample(ids: np.ndarray, most: int, seed: int = 0) -> np.ndarray:
    if len(ids) <= most:
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, most, replace=False))


def _stored_features(embedding_set: EmbeddingSet, most: int) -> tuple[np.ndarray, np.ndarray]:
    """The set's stored (ids, features), at most ``most`` rows (a seeded sample, block by block)."""
    from labeling.ml.embed import load_embeddings

    parts_ids, parts = [np.zeros(0, np.int64)], [np.zeros((0, embedding_set.dim), np.float16)]
    rate = min(1.0, most / max(embedding_set.count, 1))
    rng = np.random.default_rng(0)
    for path in _block_files(embedding_set):
        ids, features = load_embeddings(path)
        keep = rng.random(len(ids)) < rate if rate < 1 else np.ones(len(ids), bool)
        parts_ids.append(ids[keep])
        parts.append(features[keep])
    return np.concatenate(parts_ids)[:most], np.concatenate(parts)[:most]


def _replace(run_id: int, kind: str, ids: np.ndarray, scores: np.ndarray, **columns: np.ndarray) -> int:
    from django.db import transaction

    from labeling.models import CurationScore

    rows = (
        CurationScore(
            run_id=run_id,
            kind=kind,
            image_id=int(i),
            score=float(s),
            **{name: (v.item() if hasattr(v, "item") else v) for name, v in zip(columns, extra)},
        )
        for i, s, *extra in zip(ids.tolist(), scores.tolist(), *columns.values())
    )
    with transaction.atomic():
        CurationScore.objects.filter(run_id=run_id, kind=kind).delete()
        return len(CurationScore.objects.bulk_create(rows, batch_size=5000))


def diverse_write(*, backbone_run_id: int) -> int:
    """After a pretraining: the "diverse" order of its images, the submitted ones counted as
    covered. Returns the rows written."""
    from labeling.data import submitted_ids
    from labeling.ml.curation import diverse_scores
    from labeling.models import CurationKind

    embedding_set = embedding_set_of(backbone_run_id)
    if embedding_set is None:
        return 0
    ids, features = _stored_features(embedding_set, RANKED_MAX)
    done = np.isin(ids, submitted_ids(embedding_set.project_id))
    centres = features[done][_sample(np.arange(int(done.sum())), CENTRES_MAX)]
    scores = diverse_scores(features[~done], DIVERSE_PICKS, centres=centres)
    return _replace(backbone_run_id, CurationKind.DIVERSE, ids[~done], scores)


def hybrid_write(*, run_id: int) -> int:
    """After a probe run scored every block: HYBRID_PICKS images picked by greedy k-center among
    the most uncertain, away from the submitted images, in pick order."""
    from labeling.data import features_of, submitted_ids
    from labeling.ml.curation import hybrid_order
    from labeling.models import CurationKind, ImageUncertainty, TrainingRun

    run = TrainingRun.objects.get(pk=run_id)
    embedding_set = embedding_set_of(run.backbone_run_id)
    if embedding_set is None:
        return 0
    ranked = ImageUncertainty.objects.filter(run_id=run_id).order_by("-score", "image_id")
    pool = dict(ranked.values_list("image_id", "score")[: HYBRID_PICKS * HYBRID_POOL_FACTOR])
    ids, features = features_of(embedding_set=embedding_set, ids=np.array(sorted(pool), dtype=np.int64))
    _, centres = features_of(embedding_set=embedding_set, ids=_sample(submitted_ids(run.project_id), CENTRES_MAX))
    uncertainty = np.array([pool[int(i)] for i in ids])
    picks = hybrid_order(features, uncertainty, HYBRID_PICKS, centres=centres, pool_factor=HYBRID_POOL_FACTOR)
    scores = 1 + (len(picks) - np.arange(len(picks))) / max(len(picks), 1)
    return _replace(run_id, CurationKind.HYBRID, ids[picks], scores)


def mistakes_write(*, run_id: int, labeled: np.ndarray, y: np.ndarray, oof: np.ndarray, label_ids: np.ndarray) -> int:
    """After a probe fit: each submitted image's most doubtful label by self-confidence of the
    out-of-fold probabilities (``oof``, NaN for untrained labels) against its labels ``y``."""
    from labeling.ml.curation import likely_mistakes
    from labeling.models import CurationKind

    m = likely_mistakes(y, oof)
    keep = m.label >= 0
    rows = np.flatnonzero(keep)
    probability = oof[rows, m.label[rows]].astype(np.float64)
    return _replace(
        run_id,
        CurationKind.MISTAKE,
        np.asarray(labeled)[rows],
        m.score[rows],
        label_id=np.asarray(label_ids)[m.label[rows]],
        given=m.given[rows],
        probability=probability,
    )


def mistake_note(*, image_id: int, run_id: int | None) -> dict | None:
    """What the review page says when the current probe doubts one of the image's labels."""
    from labeling.models import CurationKind, CurationScore

    if run_id is None:
        return None
    row = (
        CurationScore.objects.filter(run_id=run_id, kind=CurationKind.MISTAKE, image_id=image_id)
        .select_related("label")
        .first()
    )
    if row is None or row.label is None:
        return None
    return {
        "label": row.label.name,
        "color": row.label.color,
        "given": bool(row.given),
        "probability": row.probability,
        "score": row.score,
    }


# Near-duplicates (labeling.ml.curation.near_duplicate_groups): candidate pairs, from the features
# (cosine >= DUPLICATE_FEATURE_CANDIDATES) and from 8 x 8 grey views of each image and of crops of it
# (>= DUPLICATE_VIEW_CANDIDATES), at most DUPLICATE_CANDIDATES_PER_IMAGE of each kind per image, are
# confirmed by their pixels in the worker's image cache: the best RGB correlation over scales and
# shifts must reach DUPLICATE_PIXEL_THRESHOLD. Measured with bench/curation.py (400 scenes + 100
# planted 80-95 % crops, JPEG re-encodes and colour shifts; threshold chosen on half of the groups,
# judged on the other half; bench/results/curation_duplicates.json, 2 cores): 0.94 was the choice on
# the demo scenes and on the clutter family alike, and judged precision / recall 1.00 / 1.00 on both;
# over all the groups the app's constants give 1.00 / 0.99 (demo) and 0.95 / 0.98 (clutter). The
# features alone (after 2.5 minutes of the CPU preset) reached 0.86 / 0.72 (demo, at 0.98) and
# 1.00 / 0.66 (clutter, at 0.99): crops fall apart in feature space. Images without
# cached pixels, and projects over DUPLICATES_PIXELS_MAX, fall back to the features alone at
# DUPLICATE_THRESHOLD (0.90 / 0.74 on the demo scenes after the preset's 10 minutes,
# curation_quality_600s.json).
DUPLICATE_THRESHOLD = 0.98
DUPLICATES_MAX = 200_000  # exact all-pairs search; a larger project gets no groups (logged)
DUPLICATES_PIXELS_MAX = 50_000  # up to here the pixels confirm (3 KB an image in memory); beyond, features alone


def _duplicate_pixels(embedding_set: EmbeddingSet, ids: np.ndarray):
    """(uint8 (N, 3, 32, 32), seen (N,)) from the project's image cache at the set's resolution, or
    (None, None) when the project is too big for it; an image not in the cache is not seen."""
    import torch

    from labeling.ml.cache import ImageCache, store_dir
    from labeling.ml.curation import PIXEL_SIDE, small_pixels
    from labeling.paths import project_cache_dir

    if len(ids) > DUPLICATES_PIXELS_MAX:
        return None, None
    r = embedding_set.resolution
    cache = ImageCache(store_dir(project_cache_dir(embedding_set.project_id), r), resolution=r)
    seen = np.isin(ids, cache.ids)
    pixels = torch.zeros((len(ids), 3, PIXEL_SIDE, PIXEL_SIDE), dtype=torch.uint8)
    rows = np.flatnonzero(seen)
    for start in range(0, len(rows), 4096):
        part = rows[start : start + 4096]
        pixels[torch.from_numpy(part)] = small_pixels(cache.read(ids[part]))
    return pixels, seen


def duplicates_write(*, backbone_run_id: int, threshold: float | None = None) -> int:
    """After a pretraining: the near-duplicate groups of its images (those in a group of two or
    more), as "duplicate" rows with the group (its smallest id) and its size, and handed to the
    annotation queue, which serves one image per group. Returns the rows."""
    import logging

    from annotator.services.duplicates import images_duplicate_groups_set
    from labeling.ml.curation import near_duplicate_groups  # torch: the worker's side only (test_imports.py)
    from labeling.models import CurationKind

    embedding_set = embedding_set_of(backbone_run_id)
    if embedding_set is None:
        return 0
    if embedding_set.count > DUPLICATES_MAX:
        logging.getLogger(__name__).warning(
            "run %s: %s images, over DUPLICATES_MAX: no near-duplicate groups", backbone_run_id, embedding_set.count
        )
        images_duplicate_groups_set(project_id=embedding_set.project_id, groups=())
        return 0
    ids, features = _stored_features(embedding_set, DUPLICATES_MAX)
    pixels, seen = _duplicate_pixels(embedding_set, ids)
    groups = near_duplicate_groups(
        ids,
        features,
        threshold=DUPLICATE_THRESHOLD if threshold is None else threshold,
        pixels=pixels,
        seen=seen,
        view_max=DUPLICATES_PIXELS_MAX,
    )
    names, sizes = np.unique(groups, return_counts=True)
    size = dict(zip(names.tolist(), sizes.tolist()))
    grouped = np.array([size[g] > 1 for g in groups.tolist()], dtype=bool)
    # The queue serves one image per group (annotator.services.duplicates): it reads its own column.
    images_duplicate_groups_set(
        project_id=embedding_set.project_id, groups=zip(ids[grouped].tolist(), groups[grouped].tolist())
    )
    return _replace(
        backbone_run_id,
        CurationKind.DUPLICATE,
        ids[grouped],
        np.array([size[g] for g in groups[grouped].tolist()], dtype=np.float64),
        group=groups[grouped],
    )


def duplicate_groups_page(*, project_id: int, after: int | None = None, limit: int = 50) -> dict:
    """A page of the current backbone's near-duplicate groups, by group id (keyset): {"groups":
    [{"group", "images": [ids]}], "next_after"}. Empty before a pretraining."""
    from labeling.models import CurationKind, CurationScore

    run_id = current_backbone_run_id(project_id=project_id)
    rows = CurationScore.objects.filter(run_id=run_id, kind=CurationKind.DUPLICATE)
    names = list(
        rows.filter(group__gt=after if after is not None else -1)
        .order_by("group")
        .values_list("group", flat=True)
        .distinct()[: limit + 1]
    )
    more, names = len(names) > limit, names[:limit]
    members: dict[int, list[int]] = {g: [] for g in names}
    for group, image_id in rows.filter(group__in=names).order_by("group", "image_id").values_list("group", "image_id"):
        members[group].append(image_id)
    return {
        "groups": [{"group": g, "images": members[g]} for g in names],
        "next_after": names[-1] if more and names else None,
    }


RARE_PER_BLOCK = 2000  # "rare" rows a probe run keeps per block of ids: the top of the order


def rare_write_block(
    *, run_id: int, block: int, s: int, pool: np.ndarray, probs: np.ndarray, label_ids: np.ndarray, positives, trained
) -> int:
    """In a probe run's block: the images likeliest to hold a label with few positives (labeling.ml.
    curation.rare_label_scores on the calibrated probabilities), the block's top RARE_PER_BLOCK."""
    from labeling.ml.curation import rare_label_scores
    from labeling.models import CurationKind, CurationScore

    CurationScore.objects.filter(
        run_id=run_id, kind=CurationKind.RARE, image_id__gte=block * s, image_id__lt=(block + 1) * s
    ).delete()
    if positives is None or not len(pool):
        return 0
    score, column = rare_label_scores(probs, np.asarray(positives), trained)
    top = np.argsort(-score, kind="stable")[:RARE_PER_BLOCK]
    top = top[column[top] >= 0]
    rows = [
        CurationScore(
            run_id=run_id,
            kind=CurationKind.RARE,
            image_id=int(pool[i]),
            score=float(score[i]),
            label_id=int(label_ids[column[i]]),
        )
        for i in top
    ]
    return len(CurationScore.objects.bulk_create(rows, batch_size=5000))
