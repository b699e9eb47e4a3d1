"""More like this on a large project reads the worker's approximate index (labeling/curation.py):
built after the pretraining beside the blocks, merged with the rows embedded after it was built."""

from __future__ import annotations

import numpy as np
import pytest

from labeling import curation
from labeling.ml.embed import load_embeddings, save_embeddings
from labeling.paths import ann_path, block_path
from tests.factories import embeddings

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=40)]


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"


def _rows(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 16))


def _exact(team, run, image_id, k, monkeypatch):
    monkeypatch.setattr(curation, "ANN_MIN_IMAGES", 10**9)
    found = curation.similar_ids(project_id=team.project.id, image_id=image_id, k=k)
    monkeypatch.setattr(curation, "ANN_MIN_IMAGES", 10)
    return found


def test_a_small_project_gets_no_index(team):
    run = embeddings(team.project, team.ids, _rows(40))
    assert curation.ann_write(backbone_run_id=run.id) == 0 and not ann_path(run.id).exists()


def test_a_large_project_is_searched_through_its_index(team, monkeypatch):
    monkeypatch.setattr(curation, "ANN_MIN_IMAGES", 10)
    run = embeddings(team.project, team.ids, _rows(40), block_size=16)
    assert curation.ann_write(backbone_run_id=run.id) == 40 and ann_path(run.id).exists()
    calls = []
    original = curation._ann_similar
    monkeypatch.setattr(curation, "_ann_similar", lambda *a: calls.append(a) or original(*a))
    found = curation.similar_ids(project_id=team.project.id, image_id=team.ids[3], k=5)
    assert calls and found[0] == run.id
    exact = _exact(team, run, team.ids[3], 5, monkeypatch)
    # 40 rows make 16 lists (the fewest), all visited (nprobe 128): the exact search's answer
    assert [i for i, _ in found[1]] == [i for i, _ in exact[1]]
    assert team.ids[3] not in [i for i, _ in found[1]]


def test_images_embedded_after_the_index_are_found_too(team, monkeypatch):
    monkeypatch.setattr(curation, "ANN_MIN_IMAGES", 10)
    x = _rows(40)
    run = embeddings(team.project, team.ids[:36], x[:36], block_size=16)
    curation.ann_write(backbone_run_id=run.id)
    # Four images imported later, embedded into their block (as labeling.data.block_features does);
    # the last one a near copy of image 0.
    # Each into the file of its own block: the four ids may straddle a block boundary (PostgreSQL's ids
    # run on across tests).
    x[39] = x[0] + 0.001
    for k in range(36, 40):
        path = block_path(run.id, team.ids[k] // 16)
        empty = (np.zeros(0, np.int64), np.zeros((0, 16), np.float16))
        have_ids, have = load_embeddings(path) if path.exists() else empty
        save_embeddings(path, np.append(have_ids, team.ids[k]), np.concatenate([have, x[k : k + 1].astype(np.float16)]))
    found = curation.similar_ids(project_id=team.project.id, image_id=team.ids[0], k=3)[1]
    assert found[0][0] == team.ids[39] and found[0][1] > 0.99
    assert curation.similar_ids(project_id=team.project.id, image_id=team.ids[39], k=1)[1][0][0] == team.ids[0]
