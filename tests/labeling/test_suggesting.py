"""Embeddings and suggestions in blocks of ids: the same suggestions whether one worker scores the
blocks in turn or a chord spreads them (tasks run eagerly here; tests/integration has two real
workers)."""

from __future__ import annotations

import pytest

from labeling import services
from labeling.data import project_blocks
from labeling.paths import embeddings_dir
from labeling.suggesting import finalise, suggest_block
from labeling.models import EmbeddingSet, ImageUncertainty, ProjectModelState, RunKind, RunStatus, Suggestion
from labeling.models import SuggestionShard, TrainingRun
from tests.labeling.conftest import TINY

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def small_blocks(eager_tasks, settings):
    settings.SHARD_IMAGES = 7
    settings.SUGGEST_PARALLEL = False


def rows(run_id):
    suggestions = set(
        Suggestion.objects.filter(run_id=run_id).values_list("image_id", "label_id", "probability", "predicted")
    )
    scores = set(ImageUncertainty.objects.filter(run_id=run_id).values_list("image_id", "score"))
    return suggestions, scores


def test_a_chord_of_shards_writes_what_one_worker_writes(project, settings):
    services.pretrain_start(project=project, config=TINY)
    pretrain = TrainingRun.objects.get(project=project, kind=RunKind.PRETRAIN)
    embedding_set = EmbeddingSet.objects.get(run=pretrain)
    blocks = project_blocks(project.id, 7)
    assert embedding_set.block_size == 7 and len(blocks) >= 5
    files = sorted(p.name for p in embeddings_dir(pretrain.id).iterdir())
    assert files == [f"block-{b:07d}.npz" for b in blocks]

    one = ProjectModelState.objects.get(project=project).probe_run_id
    assert TrainingRun.objects.get(pk=one).status == RunStatus.SUCCEEDED
    assert sorted(SuggestionShard.objects.filter(run_id=one).values_list("block", flat=True)) == blocks
    inline, inline_scores = rows(one)
    unlabeled = project.images.exclude(status="submitted").count()
    assert len(inline_scores) == unlabeled and len(inline) % unlabeled == 0 and inline

    settings.SUGGEST_PARALLEL = True
    chorded = services.probe_start(project=project)
    chorded.refresh_from_db()
    assert chorded.status == RunStatus.SUCCEEDED, chorded.error
    assert ProjectModelState.objects.get(project=project).probe_run_id == chorded.id
    assert SuggestionShard.objects.filter(run=chorded).count() == len(blocks)
    assert rows(chorded.id) == (inline, inline_scores)
    assert not Suggestion.objects.filter(run_id=one).exists()  # swapped whole


def test_a_shard_run_twice_changes_nothing(project):
    services.pretrain_start(project=project, config=TINY)
    run_id = ProjectModelState.objects.get(project=project).probe_run_id
    before = rows(run_id)
    TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.RUNNING)
    block = project_blocks(project.id, 7)[-1]
    assert suggest_block(run_id, block, "again").startswith(f"block {block}")
    assert rows(run_id) == before
    assert SuggestionShard.objects.get(run_id=run_id, block=block).worker == "again"
    assert finalise(run_id) == "succeeded" and finalise(run_id) == "not running"
