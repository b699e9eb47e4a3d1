"""The approximate nearest-neighbour index (labeling/ml/ann.py) against the exact search, on the CPU."""

from __future__ import annotations

import numpy as np

from labeling.ml.ann import AnnConfig, ann_build, ann_load, lists_for
from labeling.ml.curation import nearest


def _clustered(n=3000, d=32, centres=30, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d))
    return (c[rng.integers(0, centres, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float16)


def test_it_finds_what_the_exact_search_finds_when_it_visits_every_list(tmp_path):
    x = _clustered()
    ids = np.arange(10, 10 + len(x), dtype=np.int64)
    blocks = [(ids[:1000], x[:1000]), (ids[1000:], x[1000:])]
    meta = ann_build(tmp_path / "i.faiss", x[::3], blocks, rows=len(x), config=AnnConfig(nprobe=4))
    assert meta["rows"] == len(x) and meta["max_id"] == ids[-1]
    index = ann_load(tmp_path / "i.faiss")
    queries = x[[5, 700, 2500]]
    exact = nearest(queries, blocks, k=10)
    every = index.search(queries, 10, nprobe=int(meta["lists"]))
    assert (every.ids == exact.ids).mean() > 0.95  # float16 rows: ties may swap
    np.testing.assert_allclose(every.scores, exact.scores, atol=2e-3)


def test_its_recall_with_the_default_probes_is_high_on_clustered_rows(tmp_path):
    x = _clustered(seed=1)
    ids = np.arange(len(x), dtype=np.int64)
    ann_build(tmp_path / "i.faiss", x, [(ids, x)], rows=len(x), config=AnnConfig(nprobe=8))
    index = ann_load(tmp_path / "i.faiss")
    queries = x[:50]
    exact = nearest(queries, [(ids, x)], k=10).ids
    found = index.search(queries, 10).ids
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
    assert recall >= 0.9


def test_the_number_of_lists_grows_with_the_square_root_of_the_rows():
    assert lists_for(1_000_000) == 1000 and lists_for(100_000) == 316 and lists_for(10) == 16
