"""Embeddings and suggestions in blocks of ids: the same suggestions whether one worker scores the
blocks in turn or a chord spreads them (tasks run eagerly here; tests/integration has two real
workers)."""

from __future__ import annotations

import numpy as np
import pytest

from labeling import services, suggesting
from labeling.data import embedding_set_of, project_blocks
from labeling.paths import embeddings_dir, finetuned_path, probe_path
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


@pytest.fixture
def quick_finetune(settings, monkeypatch):
    """Probe fits fine-tune from 10 submitted images, for a few steps (the recipe's 60 epochs are
    measured in bench/finetune_scorer.py, not here)."""
    settings.SUGGEST_FINETUNE_FROM = 10
    monkeypatch.setattr(suggesting, "FINETUNE_OVERRIDES", {"epochs": 4, "max_steps": 8, "batch_size": 8})


def test_a_probe_fit_compares_the_fine_tuned_network_with_the_frozen_probe(project, quick_finetune):
    services.pretrain_start(project=project, config=TINY)
    run = TrainingRun.objects.get(pk=ProjectModelState.objects.get(project=project).probe_run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    tuned = run.metrics["finetune"]
    assert tuned["images"] == 20 and tuned["seconds"] >= 0
    assert 0 <= tuned["cv_map"] <= 1 and 0 <= tuned["frozen_cv_map"] <= 1
    assert 0 <= tuned["ensemble_cv_map"] <= 1
    maps = {"features": tuned["frozen_cv_map"], "finetuned": tuned["cv_map"], "ensemble": tuned["ensemble_cv_map"]}
    assert tuned["kept"] == run.metrics["scorer"] == suggesting.choose_scorer(maps)
    # The cross-validated figures the dashboard shows are the kept scorer's (the frozen probe's own
    # come from its 5 folds; the comparison used the networks' 3).
    if tuned["kept"] == "features":
        assert run.metrics["cv"]["map"] == pytest.approx(run.metrics["cv_map"][str(run.metrics["weight_decay"])])
    else:
        assert run.metrics["cv"]["map"] == pytest.approx(maps[tuned["kept"]])
    assert finetuned_path(run.id).exists() == (tuned["kept"] != "features")


@pytest.mark.parametrize("scorer", ["finetuned", "ensemble"])
def test_fine_tuned_suggestions_are_the_chosen_scorers_calibrated_scores(project, quick_finetune, monkeypatch, scorer):
    """The network's probabilities, or ("ensemble") their mean with the frozen probe's."""
    from labeling.data import features_of, fill_cache
    from labeling.ml.finetune import load_net, predict
    from labeling.ml.probe import load_probe

    monkeypatch.setattr(suggesting, "choose_scorer", lambda maps: scorer)
    services.pretrain_start(project=project, config=TINY)
    state = ProjectModelState.objects.get(project=project)
    run = TrainingRun.objects.get(pk=state.probe_run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    cv_key = "cv_map" if scorer == "finetuned" else "ensemble_cv_map"
    assert run.metrics["scorer"] == scorer and run.metrics["cv"]["map"] == pytest.approx(
        run.metrics["finetune"][cv_key]
    )
    probe = load_probe(probe_path(run.id))
    assert probe.scorer == scorer
    unlabeled = np.array(sorted(project.images.exclude(status="submitted").values_list("id", flat=True)))
    cache, cached = fill_cache(project.id, 16, ids=unlabeled)
    raw = predict(load_net(finetuned_path(run.id)), cache.view(cached))
    if scorer == "ensemble":
        embedded, features = features_of(embedding_set=embedding_set_of(run.backbone_run_id), ids=cached)
        assert np.array_equal(embedded, cached)
        raw = (raw + probe.predict_proba(features)) / 2
    expected = probe.calibrated(raw)
    label_column = {int(label_id): j for j, label_id in enumerate(probe.label_ids)}
    got = Suggestion.objects.filter(run=run).values_list("image_id", "label_id", "probability")
    row = {int(i): k for k, i in enumerate(cached)}
    assert len(got) == len(unlabeled) * len(probe.label_ids)
    for image_id, label_id, probability in got:
        assert probability == pytest.approx(float(expected[row[image_id], label_column[label_id]]), abs=1e-4)


@pytest.mark.parametrize("scorer", ["features", "finetuned"])
def test_a_fit_that_fine_tuned_ranks_likely_mistakes_by_the_average_whatever_it_suggests_with(
    project, quick_finetune, monkeypatch, scorer
):
    """The mean of the network's and the frozen probe's out-of-fold scores (on the networks' folds)
    ranks the submitted images' doubtful labels, whichever scorer makes the suggestions; the first
    stage, which fine-tunes nothing, ranks by the frozen probe's own (5-fold) scores."""
    from labeling import curation
    from labeling.ml import finetune, probe as probe_module
    from labeling.ml.curation import likely_mistakes
    from labeling.models import CurationKind, CurationScore

    seen: dict[str, list] = {"network": [], "frozen_on_network_folds": [], "ranked": []}
    real_cross_fit, real_fit_probe, real_write = finetune.cross_fit, probe_module.fit_probe, curation.mistakes_write

    def cross_fit(*args, **kwargs):
        net, oof = real_cross_fit(*args, **kwargs)
        seen["network"].append(oof.copy())
        return net, oof

    def fit_probe(x, y, config=None):
        probe = real_fit_probe(x, y) if config is None else real_fit_probe(x, y, config)
        if config is not None and config.folds == finetune.FinetuneConfig().folds:
            seen["frozen_on_network_folds"].append(probe.oof_scores.copy())
        return probe

    def mistakes_write(**kwargs):
        seen["ranked"].append((kwargs["run_id"], kwargs["y"].copy(), kwargs["oof"].copy()))
        return real_write(**kwargs)

    real_trust_fit = suggesting.trust_fit

    def trust_fit(**kwargs):
        seen.setdefault("calibrated_on", []).append(kwargs["oof"].copy())
        return real_trust_fit(**kwargs)

    monkeypatch.setattr(finetune, "cross_fit", cross_fit)
    monkeypatch.setattr(probe_module, "fit_probe", fit_probe)
    monkeypatch.setattr(suggesting, "mistakes_write", mistakes_write)
    monkeypatch.setattr(suggesting, "trust_fit", trust_fit)
    monkeypatch.setattr(suggesting, "choose_scorer", lambda maps: scorer)
    services.pretrain_start(project=project, config=TINY)
    first, second = TrainingRun.objects.filter(project=project, kind=RunKind.PROBE).order_by("id")
    assert second.status == RunStatus.SUCCEEDED, second.error
    assert second.metrics["scorer"] == scorer and second.metrics["finetune"]["mistakes_ranked_by"] == "ensemble"
    assert [run_id for run_id, _, _ in seen["ranked"]] == [first.id, second.id]
    assert len(seen["network"]) == len(seen["frozen_on_network_folds"]) == 1
    network, frozen = seen["network"][0], seen["frozen_on_network_folds"][0]
    _, y, ranked = seen["ranked"][1]
    t = np.isfinite(frozen).all(axis=0)
    assert t.any()
    np.testing.assert_allclose(ranked[:, t], (network[:, t] + frozen[:, t]) / 2, rtol=1e-6)
    assert not np.allclose(ranked[:, t], network[:, t]) and not np.allclose(ranked[:, t], frozen[:, t])
    # Calibration and the confident thresholds stay the chosen scorer's: the network's, or the probe's own.
    calibrated_on = seen["calibrated_on"][1][:, t]
    if scorer == "finetuned":
        np.testing.assert_allclose(calibrated_on, network[:, t], rtol=1e-6)
    else:
        np.testing.assert_allclose(calibrated_on, seen["calibrated_on"][0][:, t], atol=1e-5)
    # The first stage: the frozen probe's own scores, not the average.
    assert not np.allclose(seen["ranked"][0][2][:, t], ranked[:, t])
    # What the review queue reads is that ranking.
    expected = likely_mistakes(y, ranked)
    rows = dict(CurationScore.objects.filter(run=second, kind=CurationKind.MISTAKE).values_list("image_id", "score"))
    labeled = np.array(sorted(project.images.filter(status="submitted").values_list("id", flat=True)))
    assert rows and len(rows) == int((expected.label >= 0).sum())
    for k in np.flatnonzero(expected.label >= 0):
        assert rows[int(labeled[k])] == pytest.approx(float(expected.score[k]), abs=1e-6)


def test_below_the_rule_a_probe_fit_does_not_fine_tune(project, settings):
    settings.SUGGEST_FINETUNE_FROM = 21  # the project has 20 submitted images
    services.pretrain_start(project=project, config=TINY)
    run = TrainingRun.objects.get(pk=ProjectModelState.objects.get(project=project).probe_run_id)
    assert run.metrics["scorer"] == "features" and run.metrics["finetune"] is None
    assert not finetuned_path(run.id).exists()
    assert TrainingRun.objects.filter(project=project, kind=RunKind.PROBE).count() == 1  # no second stage


def test_a_refit_from_the_rule_swaps_in_the_frozen_probe_first_then_the_fine_tuned_scores(project, quick_finetune):
    """The first stage's suggestions come in seconds (the frozen probe); the fine-tuning, minutes on a
    CPU, follows as a run of its own and swaps its suggestions in when it is done."""
    services.pretrain_start(project=project, config=TINY)
    first, second = TrainingRun.objects.filter(project=project, kind=RunKind.PROBE).order_by("id")
    assert first.status == second.status == RunStatus.SUCCEEDED, (first.error, second.error)
    assert first.config == {} and not first.finetune_stage and second.finetune_stage
    assert first.metrics["scorer"] == "features"
    assert first.metrics["finetune"] == {"kept": "features", "deferred": True, "images": 20}
    assert not finetuned_path(first.id).exists()
    assert "deferred" not in second.metrics["finetune"] and second.metrics["finetune"]["images"] == 20
    assert second.metrics["scorer"] == second.metrics["finetune"]["kept"]
    assert first.finished_at <= second.started_at
    assert ProjectModelState.objects.get(project=project).probe_run_id == second.id
    assert not Suggestion.objects.filter(run=first).exists()  # swapped out whole
    assert Suggestion.objects.filter(run=second).exists()
    # A refit the second stage finds: none is queued after it, and the next refit starts at stage one.
    assert suggesting.probe_follow(second.id, lambda run: pytest.fail("sent")) == []
    third = services.probe_start(project=project)
    assert not third.finetune_stage and TrainingRun.objects.filter(project=project, kind=RunKind.PROBE).count() == 4


def _no_shards(run_id, block):
    pytest.fail("sharded")


@pytest.mark.parametrize("scorer", ["features", "finetuned"])
def test_a_fine_tuning_pauses_for_a_refit_that_falls_due_and_resumes_on_the_labels_it_started_with(
    project, quick_finetune, monkeypatch, settings, scorer
):
    """With one worker, a fine-tuning stage (minutes on a CPU) pauses between two epochs for a
    refit that fell due meanwhile, whose frozen probe's suggestions come in seconds; then it resumes
    where it was, on the images and labels it started with, and is shown if its network beat the
    frozen probe. Its follow fine-tunes on the newer labels."""
    from annotator.services.annotations import image_submit
    from labeling.ml import finetune
    from labeling.paths import finetune_paused_path
    from labeling.runs import current_backbone_run_id, probe_create

    settings.PROBE_REFIT_EVERY = 3
    settings.TRAINING_SLICE_S = 1e-6  # a slice of an epoch: the first check after it pauses
    services.pretrain_start(project=project, config=TINY)  # 20 submitted: a first stage, then its fine-tuning
    monkeypatch.setattr(suggesting, "choose_scorer", lambda maps: scorer)
    backbone_run_id = current_backbone_run_id(project_id=project.id)
    tuning = probe_create(project=project, backbone_run_id=backbone_run_id, finetune=True)
    queued, rows, sent = [], [], []
    monkeypatch.setattr(services, "run_enqueue", queued.append)  # queued behind the busy worker, not run here
    real_fit = finetune.fit

    def fit(backbone_state, model, images, labels, *args, **kwargs):
        rows.append(len(images))
        if len(rows) == 1:  # three submissions while the first network trains: a refit falls due
            for image in project.images.filter(status="unlabeled").order_by("id")[:3]:
                image_submit(image=image, user=project.created_by, version=image.version)
        return real_fit(backbone_state, model, images, labels, *args, **kwargs)

    monkeypatch.setattr(finetune, "fit", fit)
    assert suggesting.run_probe(tuning.id, "w", send_shard=_no_shards, send=sent.append) == "yielded"
    tuning.refresh_from_db()
    assert tuning.status == RunStatus.QUEUED and tuning.attempts == 0
    assert tuning.error.startswith("Paused at network 1 of 4, epoch 2, of its fine-tuning")  # after one epoch
    assert sent == [tuning] and len(rows) == 1 and finetune_paused_path(tuning.id).exists()
    kept = suggesting._paused_fit(tuning.id, np.array(list(project.labels.values_list("id", flat=True))))
    assert kept["done"] == {} and (kept["current"]["index"], kept["current"]["epoch"]) == (0, 1)
    assert len(kept["ids"]) == len(kept["y"]) == 20 and kept["pauses"] == 1
    (refit,) = [run for run in queued if run.kind == RunKind.PROBE]
    assert not refit.finetune_stage

    assert suggesting.run_probe(refit.id, "w", send_shard=_no_shards, send=sent.append) == "succeeded"
    refit.refresh_from_db()
    assert refit.metrics["labeled"] == 23 and refit.metrics["finetune"]["deferred"]
    assert ProjectModelState.objects.get(project=project).probe_run_id == refit.id
    assert sent == [tuning]  # its fine-tuning waits for the one under way

    assert suggesting.run_probe(tuning.id, "w", send_shard=_no_shards, send=sent.append) == "succeeded"
    tuning.refresh_from_db()
    assert len(rows) == 5 and rows[-1] == 20  # the first network again from its epoch 2, three more, on its 20 images
    assert tuning.metrics["labeled"] == tuning.metrics["finetune"]["images"] == 20
    assert tuning.metrics["finetune"]["paused"] == 1 and tuning.metrics["scorer"] == scorer
    assert not finetune_paused_path(tuning.id).exists()
    shown = ProjectModelState.objects.get(project=project).probe_run_id
    if scorer == "finetuned":  # a better model on 3 labels fewer replaces the newer frozen probe
        assert shown == tuning.id and "shown" not in tuning.metrics
        assert Suggestion.objects.filter(run=tuning).exists()
    else:  # the frozen probe on fewer labels does not
        assert shown == refit.id and tuning.metrics["shown"] is False
    assert Suggestion.objects.filter(run=refit).exists()  # never removed under a fit that is shown or newer
    # The newer labels get a fine-tuning of their own.
    assert len(sent) == 2 and sent[1].finetune_stage and sent[1].id > refit.id


def test_a_refit_that_fell_due_while_a_fit_ran_is_queued_when_it_ends(project, settings):
    """Submissions made while a probe fit runs cannot queue a refit beside it; when it ends, one is
    queued if they reached PROBE_REFIT_EVERY, instead of waiting for the next submission."""
    from labeling.runs import current_backbone_run_id, probe_create

    settings.PROBE_REFIT_EVERY = 3
    services.pretrain_start(project=project, config=TINY)
    backbone_run_id = current_backbone_run_id(project_id=project.id)
    for since, follows in [(2, 0), (3, 1)]:
        fit = probe_create(project=project, backbone_run_id=backbone_run_id)
        ProjectModelState.objects.filter(project=project).update(submissions_since_fit=since)
        sent = []
        assert suggesting.run_probe(fit.id, "w", send_shard=_no_shards, send=sent.append) == "succeeded"
        assert len(sent) == follows and all(not run.finetune_stage for run in sent)
        assert [run.status for run in sent] == [RunStatus.QUEUED] * follows
        assert ProjectModelState.objects.get(project=project).submissions_since_fit == (0 if follows else since)
    services.run_cancel(run=sent[0])


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_probe_fit_without_its_pretraining_checkpoint_keeps_the_frozen_probe(project, quick_finetune, damage):
    """The embeddings are all a frozen probe needs; a lost or damaged checkpoint (a cleaned disk, a
    half-copied volume) costs the fine-tuning, not the run."""
    from labeling.paths import checkpoint_path

    services.pretrain_start(project=project, config=TINY)
    path = checkpoint_path(
        TrainingRun.objects.get(pk=ProjectModelState.objects.get(project=project).probe_run_id).backbone_run_id
    )
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:100])
    first = services.probe_start(project=project)
    run = TrainingRun.objects.get(pk=ProjectModelState.objects.get(project=project).probe_run_id)
    assert run.id > first.id and run.finetune_stage  # the refit's second stage
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.metrics["scorer"] == "features"
    assert run.metrics["finetune"]["kept"] == "features" and run.metrics["finetune"]["images"] == 20
    assert run.metrics["finetune"]["skipped"] == (
        "the pretraining's checkpoint is missing"
        if damage == "missing"
        else "the pretraining's checkpoint could not be read"
    )
    assert not finetuned_path(run.id).exists()
    assert Suggestion.objects.filter(run=run).exists()


def test_a_fine_tuning_with_no_disk_space_to_pause_goes_on_instead_of_losing_its_training(
    project, quick_finetune, monkeypatch, settings
):
    """Pausing keeps the network under way on disk (134 MB at ResNet-18's size). When the disk is
    full (a real ENOSPC: /dev/full in place of the file), the fine-tuning does not pause without
    it, which would throw its epochs away: it trains on to the end in the same claim, and says so."""
    import os

    from annotator.services.annotations import image_submit
    from labeling.ml import finetune
    from labeling.paths import finetune_paused_path
    from labeling.runs import current_backbone_run_id, probe_create

    settings.PROBE_REFIT_EVERY = 3
    settings.TRAINING_SLICE_S = 1e-6
    services.pretrain_start(project=project, config=TINY)
    tuning = probe_create(
        project=project, backbone_run_id=current_backbone_run_id(project_id=project.id), finetune=True
    )
    queued, fits, sent = [], [], []
    monkeypatch.setattr(services, "run_enqueue", queued.append)
    real_fit = finetune.fit

    def fit(*args, **kwargs):
        fits.append(kwargs.get("resume") is not None)
        if len(fits) == 1:  # a refit falls due while the first network trains
            for image in project.images.filter(status="unlabeled").order_by("id")[:3]:
                image_submit(image=image, user=project.created_by, version=image.version)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(finetune, "fit", fit)
    path = finetune_paused_path(tuning.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.symlink_to("/dev/full")

    assert suggesting.run_probe(tuning.id, "w", send_shard=_no_shards, send=sent.append) == "succeeded"
    tuning.refresh_from_db()
    assert tuning.status == RunStatus.SUCCEEDED and tuning.attempts == 1
    info = tuning.metrics["finetune"]
    assert info["pause_skipped"] == "no disk space for its state" and info["paused"] == 0
    assert fits == [False, True, False, False, False]  # the first network resumed in place, then three more
    assert not path.exists() and not tmp.is_symlink()
    assert [run.kind for run in queued] == [RunKind.PROBE]  # the refit that fell due still waits its turn


def _fit(project, *, stage, cv_map, labels=("cat", "dog"), kept=None, status=RunStatus.SUCCEEDED):
    metrics = {"cv": {"map": cv_map, "labels": list(labels)}}
    if kept:
        metrics["finetune"] = {"kept": kept}
    return TrainingRun.objects.create(
        project=project, kind=RunKind.PROBE, finetune_stage=stage, status=status, metrics=metrics
    )


@pytest.mark.parametrize(
    ("shown_kept", "cv_map", "labels", "swaps"),
    [
        ("finetuned", 0.55, ("cat", "dog"), False),  # a frozen refit measured below the network shown
        ("ensemble", 0.55, ("cat", "dog"), False),
        ("finetuned", 0.60, ("cat", "dog"), True),  # as good: the newer labels win
        ("finetuned", 0.40, ("cat", "dog", "fox"), True),  # it has learned a label the network has not
        ("features", 0.40, ("cat", "dog"), True),  # the shown fine-tuning kept the frozen probe: newer wins
    ],
)
def test_a_frozen_refit_replaces_a_fine_tuned_model_only_if_it_measures_up(project, shown_kept, cv_map, labels, swaps):
    """Under steady labeling a first stage (frozen probe, seconds) finishes after a fine-tuning
    (minutes) that kept its network: the better-measured model stays shown, rather than the two
    taking turns; the refit's own fine-tuning, newer still, swaps in after it."""
    shown = _fit(project, stage=True, cv_map=0.60, kept=shown_kept)
    ProjectModelState.objects.update_or_create(project=project, defaults={"probe_run": shown})
    Suggestion.objects.create(
        run=shown, image=project.images.first(), label=project.labels.first(), probability=0.9, predicted=True
    )
    refit = _fit(project, stage=False, cv_map=cv_map, labels=labels, kept="features", status=RunStatus.RUNNING)
    assert suggesting._swaps_in(refit) is swaps

    assert finalise(refit.id) == "succeeded"
    refit.refresh_from_db()
    assert refit.status == RunStatus.SUCCEEDED
    assert ProjectModelState.objects.get(project=project).probe_run_id == (refit.id if swaps else shown.id)
    assert refit.metrics.get("shown", True) is swaps
    assert Suggestion.objects.filter(run=shown).exists() is not swaps  # the shown run's rows stay while shown

    tuning = _fit(project, stage=True, cv_map=0.50, kept="finetuned", status=RunStatus.RUNNING)
    assert suggesting._swaps_in(tuning)  # the refit's fine-tuning, newest of all, always comes in
