"""The embedding map's UMAP beside PCA (issue 17): the worker writes it into projection.npz
(labeling.pretraining.save_projection), the map's API serves it on ?projection=umap."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.models import EmbeddingSet
from labeling.paths import projection_path
from labeling.pretraining import save_projection
from tests.factories import embeddings

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=12)]


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"


def _clusters(n, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return np.eye(k, 16)[np.arange(n) % k] * 10 + rng.normal(scale=0.3, size=(n, 16))


def test_the_worker_writes_a_umap_map_whose_clusters_stay_apart(settings, tmp_path):
    settings.MAP_UMAP_POINTS = 60
    ids = np.arange(100, 190)
    save_projection(tmp_path / "embeddings", ids, _clusters(90))
    with np.load(projection_path(tmp_path / "embeddings")) as data:
        assert len(data["xy"]) == 90 and len(data["umap_ids"]) == 60 and data["umap"].shape == (60, 2)
        umap_ids, xy = data["umap_ids"], data["umap"].astype(np.float32)
    assert set(umap_ids.tolist()) <= set(ids.tolist())
    cluster = (umap_ids - 100) % 3
    centres = np.stack([xy[cluster == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(xy[cluster == c] - centres[c], axis=1).max() for c in range(3))
    apart = min(np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3))
    assert apart > 2 * spread  # every cluster farther from the others than its own radius, twice


def test_without_the_setting_the_map_is_pca_only(tmp_path):
    save_projection(tmp_path / "embeddings", np.arange(10), _clusters(10))
    with np.load(projection_path(tmp_path / "embeddings")) as data:
        assert set(data.files) == {"ids", "xy"}


def _map(client, team, **query):
    return client.get(f"/api/projects/{team.project.id}/embedding-map/", query)


def test_the_map_serves_umap_where_the_worker_computed_it(client, team):
    run = embeddings(team.project, team.ids, _clusters(12))
    client.force_login(team.owner)
    path = projection_path(EmbeddingSet.objects.get(run=run).path)
    np.savez(path, ids=np.array(team.ids), xy=np.zeros((12, 2), np.float16))
    body = _map(client, team, projection="umap").json()
    assert body["projection"] == "pca" and body["projections"] == ["pca"] and body["sampled"] == 12
    umap_ids = np.array(team.ids[::2])
    np.savez(
        path,
        ids=np.array(team.ids),
        xy=np.zeros((12, 2), np.float16),
        umap_ids=umap_ids,
        umap=np.ones((6, 2), np.float16),
    )
    body = _map(client, team, projection="umap").json()
    assert body["projection"] == "umap" and body["projections"] == ["pca", "umap"]
    assert [p[0] for p in body["points"]] == team.ids[::2] and {(p[1], p[2]) for p in body["points"]} == {(1.0, 1.0)}
    assert _map(client, team).json()["sampled"] == 12  # PCA by default
    assert _map(client, team, projection="tsne").status_code == 400


def test_the_map_leaves_the_workers_training_threads_as_they_were():
    """numba's parallel layer sets the process's OpenMP threads to every core, torch's with them, the
    first time it runs in a process after torch's own threads have: after a pretraining's map, the
    worker's next training took the web's core too. In a fresh process, as a worker's first map is."""
    import os
    import subprocess
    import sys

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: every thread count is 1")
    code = (
        "import numpy as np, torch\n"
        "from labeling.ml.projection import project_umap\n"
        "torch.set_num_threads(1)\n"
        "torch.nn.functional.conv2d(torch.randn(8, 16, 64, 64), torch.randn(16, 16, 3, 3)).sum()\n"  # torch starts its threads
        "xy = project_umap(np.random.default_rng(0).normal(size=(60, 16)))\n"
        "print(xy.shape, torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split("\n")[-2] == "(60, 2) 1"
