"""An approximate nearest-neighbour index over unit embedding rows, for "more like this" on projects
too large for the exact search (labeling.ml.curation.nearest): faiss's inverted-file index (IVF)
with float16 rows (a scalar quantizer that keeps them as they are stored), inner product = cosine.

Why IVF and not a graph (HNSW, usearch): on this 2-core machine usearch built 100,000 512-d rows in
193 s (a million would take over half an hour), faiss's IVF in 23 s, both at recall@10 1.0 on
clustered data; and IVF is built from a sample (the centroids) and then block by block, never
holding the whole project in memory. bench/curation.py --parts latency --ann measures it at 1M
(built in 68-119 s there).

No Django: paths, arrays and a dataclass config.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from labeling.ml.curation import Neighbours, unit_half
from labeling.ml.files import replaced


@dataclass(frozen=True)
class AnnConfig:
    lists_per_sqrt: float = 1.0  # inverted lists: this x sqrt(rows), at least MIN_LISTS
    train_per_list: int = 40  # centroid training rows per list (faiss asks for 39 or more)
    # Lists a query visits. bench/results/curation_ann.json (1M x 512, 1,000 lists, load 5-6): 128
    # costs p95 18 ms (16: 7 ms) for recall@10 0.99 on clustered rows and 0.32 on isotropic random
    # ones (16: 0.05), the hardest case; at 100k (316 lists) 33 ms, 0.995 and 0.64. The budget is 200 ms.
    nprobe: int = 128
    seed: int = 0


MIN_LISTS = 16


def _faiss() -> Any:
    import faiss  # imported when used: the web process may never need it

    return faiss


def lists_for(rows: int, config: AnnConfig = AnnConfig()) -> int:
    return max(MIN_LISTS, int(round(config.lists_per_sqrt * math.sqrt(max(rows, 1)))))


def ann_build(
    path: Path,
    sample: npt.NDArray[np.floating],
    blocks: Iterable[tuple[npt.NDArray[np.int64], npt.NDArray[np.floating]]],
    *,
    rows: int,
    config: AnnConfig = AnnConfig(),
) -> dict[str, int | float]:
    """Train the coarse centroids on ``sample`` (rows, D), add ``blocks`` of (ids, features) one at a
    time (``rows`` in all, for the number of lists) and write the index to ``path`` (via a
    temporary file, so a reader never sees half of one) with its metadata beside it
    (``meta_path``: lists, nprobe, rows, the largest id covered). -> the metadata."""
    faiss = _faiss()
    sample_u = unit_half(sample).astype(np.float32)
    dim = sample_u.shape[1]
    lists = min(lists_for(rows, config), max(MIN_LISTS, len(sample_u) // 39))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, lists, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = config.seed
    train = sample_u
    if len(train) > lists * config.train_per_list:
        pick = np.random.default_rng(config.seed).choice(len(train), lists * config.train_per_list, replace=False)
        train = train[np.sort(pick)]
    index.train(train)
    added, top = 0, -1
    for ids, features in blocks:
        if len(ids):
            index.add_with_ids(unit_half(features).astype(np.float32), np.asarray(ids, dtype=np.int64))
            added += len(ids)
            top = max(top, int(np.max(ids)))
    with replaced(path) as f:  # through Python's file: a full disk is an OSError, the partial file removed
        faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))
    meta: dict[str, int | float] = {"lists": lists, "nprobe": config.nprobe, "rows": added, "max_id": top, "dim": dim}
    with replaced(meta_path(path)) as f:
        f.write(json.dumps({**meta, "config": asdict(config)}).encode())
    return meta


def meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


class AnnIndex:
    """A built index, read once (``ann_load``) and queried many times."""

    def __init__(self, index: object, meta: dict[str, int | float]) -> None:
        self.index = index
        self.meta = meta
        self.max_id = int(meta["max_id"])

    def search(self, queries: npt.NDArray[np.floating], k: int, *, nprobe: int | None = None) -> Neighbours:
        """The ``k`` rows most like each query (Q, D) by cosine, most similar first; id -1 where a
        query has fewer than ``k`` neighbours in the lists it visits."""
        self.index.nprobe = int(nprobe or self.meta["nprobe"])  # type: ignore[attr-defined]
        q = unit_half(queries).astype(np.float32)
        scores, ids = self.index.search(q, k)  # type: ignore[attr-defined]
        return Neighbours(np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32))


def ann_load(path: Path) -> AnnIndex:
    faiss = _faiss()
    meta = json.loads(meta_path(path).read_text())
    return AnnIndex(faiss.read_index(str(path)), meta)
