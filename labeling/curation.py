"""Curation from the current backbone's stored embeddings (the math is labeling/ml/curation.py):
more like this, and the queue's diverse and hybrid orders and the likely-mistakes ranking, which
workers compute after a run and keep as CurationScore rows.

Nearest neighbours are exact, in torch, over the per-block float16 files. The web process keeps
each block it read as unit rows in float16 (``_unit_block``, keyed by the file's path and mtime so a
rewritten block is read again): 100,000 images x 512 features are 100 MB and a query costs one
matrix-vector product over them (bench/curation.py measures it).
"""

from __future__ import annotations

import functools
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
    None before any pretraining; NotEmbedded when the image has no embedding yet."""
    from labeling.ml.curation import nearest

    embedding_set = current_embeddings(project_id=project_id)
    if embedding_set is None:
        return None
    blocks = unit_blocks(embedding_set)
    query = feature_of(embedding_set, blocks, image_id)
    found = nearest(query, blocks, k=k + 1, unit=True)
    pairs = [(int(i), float(s)) for i, s in zip(found.ids[0], found.scores[0]) if i >= 0 and i != image_id]
    return embedding_set.run_id, pairs[:k]
