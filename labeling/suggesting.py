"""A probe run on a worker: fit the probe on the submitted images' features, save it, then score
every block of the project and swap the new suggestions in.

The blocks are scored here one after the other, or, with SUGGEST_PARALLEL, as ``suggest_shard``
tasks that any worker may take; the one that writes the last block (counted in SuggestionShard
rows, not by a chord in the result backend, which a broker restart loses) swaps the run in. A
block's rows are computed from that block alone and written for that block alone, so the result
is the same however the blocks are spread.

Worker-side code: the torch-backed ``labeling.ml.probe`` is imported inside the functions, because
the web process imports this module (through ``labeling.tasks``) to send work.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from labeling.auto_accept import auto_accept_apply
from labeling.curation import hybrid_write, mistakes_write, rare_write_block
from labeling.config import suggest_rules
from labeling.data import SCORED_STATUSES, block_features, block_ids, embedding_set_of, features_of, fill_cache
from labeling.data import label_matrix
from labeling.data import project_blocks, submitted_ids
from labeling.detection import box_uncertainty_of
from labeling.ml.active import uncertainty
from labeling.ml.files import disk_full, replaced
from labeling.ml.metrics import choose_scorer, evaluate
from labeling.models import ACTIVE_STATUSES, CurationScore, ImageUncertainty, ProjectModelState, RunKind, RunStatus
from labeling.models import Suggestion
from labeling.models import SuggestionShard, TrainingRun
from labeling.paths import checkpoint_path, finetune_paused_path, finetuned_path, probe_path, run_file
from labeling.runs import LostClaim, RunMonitor, current_backbone_run_id, current_probe_run_id, finish, pause_check
from labeling.runs import paused, probe_create, run_claimed, run_finished_emit
from labeling.trust import trust_fit

log = logging.getLogger(__name__)

# FinetuneConfig fields a probe fit's fine-tuning uses instead of the measured recipe's (tests: fewer steps).
FINETUNE_OVERRIDES: dict = {}

# Sends one block of a run as a suggest_shard task; False when the broker did not take it.
ShardSend = Callable[[int, int], bool]


def run_probe(run_id: int, node: str, *, send_shard: ShardSend, send: Callable[[TrainingRun], object]) -> str:
    """``send_shard``: how a block is handed to another worker (labeling.tasks.shard_send); ``send``:
    how the runs that follow (probe_follow) and a paused fine-tuning are sent (labeling.tasks.run_enqueue)."""
    status = run_claimed(run_id, node, lambda run, monitor: _probe(run, monitor, send_shard, send))
    if status == "succeeded":
        probe_follow(run_id, send)
    return status


def probe_follow(run_id: int, send: Callable[[TrainingRun], object]) -> list[TrainingRun]:
    """What a probe fit that succeeded leaves queued (and sent), in this order:
    - a refit, when PROBE_REFIT_EVERY submissions came in while it worked (they could not queue one
      of its stage then), so the last of a burst of labels is not left waiting for the next submission;
    - else the fine-tuning stage: after a first stage that deferred it (its frozen probe's suggestions
      came in seconds; the fine-tuning takes minutes on a CPU and swaps its own in), or after a
      fine-tuning stage that a newer first stage's labels overtook while it paused for it.
    None of either when one of its stage is already queued or running (it will see these labels)."""
    run = TrainingRun.objects.select_related("project").filter(pk=run_id, status=RunStatus.SUCCEEDED).first()
    if run is None:
        return []
    backbone_run_id = current_backbone_run_id(project_id=run.project_id) or run.backbone_run_id
    state = ProjectModelState.objects.filter(project_id=run.project_id).values("submissions_since_fit").first()
    if state and state["submissions_since_fit"] >= settings.PROBE_REFIT_EVERY:
        refit = probe_create(project=run.project, backbone_run_id=backbone_run_id)
        if refit is not None:
            send(refit)
            return [refit]  # its own follow queues the fine-tuning, on these labels too
    if not _deferred(run.metrics) and not (run.finetune_stage and _overtaken(run)):
        return []
    follow = probe_create(project=run.project, backbone_run_id=backbone_run_id, finetune=True)
    if follow is None:
        return []
    send(follow)
    return [follow]


def _deferred(metrics: dict | None) -> bool:
    return bool(((metrics or {}).get("finetune") or {}).get("deferred"))


def _overtaken(run: TrainingRun) -> bool:
    """Whether a first stage newer than this fine-tuning stage deferred a fine-tuning of its own
    (it could not queue one while this one was queued or running)."""
    newer = TrainingRun.objects.filter(
        project_id=run.project_id, kind=RunKind.PROBE, finetune_stage=False, status=RunStatus.SUCCEEDED, id__gt=run.id
    )
    return _deferred(newer.order_by("-id").values_list("metrics", flat=True).first())


def _probe(run: TrainingRun, monitor: RunMonitor, send_shard: ShardSend, send: Callable[[TrainingRun], object]) -> str:
    """Fit on the submitted images' features, then score every block of the project: here, or as
    shard tasks (SUGGEST_PARALLEL), the last of which finishes the run. A fine-tuning stage that
    paused (``send``: how it is sent again) resumes on the images and labels it started with."""
    from labeling.ml.probe import fit_probe, learning_curve, save_probe, untrainable_message

    monitor.update(device="cpu")
    embedding_set = embedding_set_of(run.backbone_run_id)
    if embedding_set is None:
        raise RuntimeError(f"pretraining run {run.backbone_run_id} left no embeddings")
    labels = list(run.project.labels.values_list("id", "name"))
    label_ids = np.array([label_id for label_id, _ in labels], dtype=np.int64)
    resumed = _paused_fit(run.id, label_ids) if run.finetune_stage else None
    labeled, x = features_of(
        embedding_set=embedding_set, ids=submitted_ids(run.project_id) if resumed is None else resumed["ids"]
    )
    if resumed is not None and not np.array_equal(labeled, resumed["ids"]):  # an image gone meanwhile: start over
        resumed = None
        labeled, x = features_of(embedding_set=embedding_set, ids=submitted_ids(run.project_id))
    names = [name for _, name in labels]
    if len(labeled) < 2:
        return _nothing_to_fit(run, {"labeled": len(labeled)}, untrainable_message(None, names))
    y = label_matrix(labeled.tolist(), label_ids) if resumed is None else resumed["y"]
    probe = fit_probe(x.astype(np.float32), y)
    report = probe.label_report(names)
    metrics = {"labeled": len(labeled), "weight_decay": probe.weight_decay, "cv_map": probe.cv_map, "labels": report}
    message = untrainable_message(probe, names)
    if message is not None:
        return _nothing_to_fit(run, metrics, message)
    t = probe.trained
    tuned = _finetuned(run, monitor, labeled, x.astype(np.float32), y, probe, label_ids, resumed, send)
    if isinstance(tuned, str):
        return tuned  # "cancelled", or "yielded" to waiting runs
    scorer, metrics["finetune"], doubt = tuned
    metrics["scorer"] = scorer
    cv = evaluate(y[:, t], probe.oof_scores[:, t], probe.thresholds[t]).to_dict()
    metrics["cv"] = {**cv, "labels": [name for name, trained in zip(names, t) if trained]}
    calibration, confident, metrics["trust"] = trust_fit(
        project_id=run.project_id,
        y=y,
        oof=probe.oof_scores,
        trained=t,
        ap=cv["ap"],
        label_ids=label_ids,
        names=names,
        labeled_ids=labeled,
        positives=probe.positives,
    )
    metrics["learning_curve"] = learning_curve(x.astype(np.float32), y, weight_decay=probe.weight_decay)
    metrics["likely_mistakes"] = _curation(
        "likely mistakes",
        mistakes_write,
        run_id=run.id,
        labeled=labeled,
        y=y,
        oof=probe.oof_scores if doubt is None else doubt,
        label_ids=label_ids,
    )
    save_probe(probe_path(run.id), probe, label_ids, calibration=calibration, confident=confident, scorer=scorer)
    monitor.update(metrics=metrics)
    log_probe_metrics(run, metrics)
    SuggestionShard.objects.filter(run=run).delete()
    return _score_blocks(run, monitor, project_blocks(run.project_id, embedding_set.block_size), send_shard)


def _finetuned(
    run: TrainingRun,
    monitor: RunMonitor,
    labeled: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    probe,
    label_ids: np.ndarray,
    resumed: dict | None,
    send: Callable[[TrainingRun], object],
) -> tuple[str, dict | None, np.ndarray | None] | str:
    """From the device's SUGGEST_RULES number of submitted images, in a refit's second stage (a run
    with ``finetune_stage``; the first only says it deferred the fine-tuning, probe_follow):
    fine-tune the pretrained backbone with a multilabel head, cross-fitted (labeling.ml.finetune),
    and choose the scorer from the
    out-of-fold mAPs over the trained labels on the same folds (``choose_scorer``) of the frozen
    probe (``x``: its features; its weight decay as chosen), the network, and the two averaged.
    When the network or the average is chosen, ``probe``'s out-of-fold scores and F1 thresholds
    become the chosen scorer's (so calibration and confident thresholds are fitted to the scorer
    that makes the suggestions) and the network is saved beside the probe.
    Whatever the scorer, a fit that fine-tuned ranks likely mistakes by the average of the two
    (the frozen probe on the networks' folds and the network): it put more of the flipped labels in
    the top 10 % than the network or the probe alone (bench/curation.py --parts mistakes_finetuned,
    curation_mistakes_finetuned_flips345.json).
    Between two epochs, past TRAINING_SLICE_S in a claim (as a pretraining or a detector fit), the
    fine-tuning pauses when other runs wait (a refit that fell due: its frozen probe's suggestions
    come in seconds): what it did, the network under way included, is
    kept (``_paused_fit``, ``resumed`` when the run is claimed again), and it resumes after them
    where it was, on the same images and labels.
    Returns (the scorer chosen, "features", "finetuned" or "ensemble"; what the fine-tuning
    measured, or None when none ran; the out-of-fold scores that rank likely mistakes, or None for
    the probe's own), or "cancelled" or "yielded" when the run was cancelled or paused meanwhile."""
    finetune_from = suggest_rules().get("finetune_from")
    if not finetune_from or len(labeled) < finetune_from:
        return "features", None, None
    if not run.finetune_stage:  # the first stage: the frozen probe's suggestions now
        return "features", {"kept": "features", "deferred": True, "images": len(labeled)}, None
    import time

    import torch

    from labeling.ml.backbone import load_backbone
    from labeling.ml.finetune import FinetuneConfig, Paused, Stopped, cross_fit, save_net
    from labeling.ml.probe import ProbeConfig, best_f1_thresholds, fit_probe
    from labeling.ml.train import load_checkpoint

    embedding_set = embedding_set_of(run.backbone_run_id)
    cache, cached = fill_cache(run.project_id, embedding_set.resolution, ids=labeled)
    if len(cached) < len(labeled):  # a submitted image that no longer decodes: the frozen probe's features stand
        log.warning("probe run %s: %d labeled images not cached, no fine-tuning", run.id, len(labeled) - len(cached))
        return "features", None, None
    try:
        config, checkpoint = load_checkpoint(checkpoint_path(run.backbone_run_id))
        backbone = load_backbone(checkpoint["model"], config.model)
    except Exception as exc:  # missing, truncated or foreign: the frozen probe's features stand
        log.warning(
            "probe run %s: pretraining %s checkpoint unreadable (%r), no fine-tuning", run.id, run.backbone_run_id, exc
        )
        reason = (
            "the pretraining's checkpoint is missing"
            if isinstance(exc, FileNotFoundError)
            else "the pretraining's checkpoint could not be read"
        )
        return "features", {"kept": "features", "skipped": reason, "images": len(labeled)}, None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tune = FinetuneConfig(**FINETUNE_OVERRIDES)
    start = time.monotonic()
    done, current = ({}, None) if resumed is None else (resumed["done"], resumed["current"])
    pauses, seconds_before = (0, 0.0) if resumed is None else (resumed["pauses"], resumed["seconds"])

    def progress(networks: int, total: int) -> None:
        elapsed = time.monotonic() - start
        rate = elapsed / max(1, networks - len(done))  # seconds a network, in this claim
        monitor.update(
            metrics={"finetune": {"networks": networks, "of": total, "seconds": round(seconds_before + elapsed, 1)}},
            eta_at=timezone.now() + timedelta(seconds=rate * (total - networks)),
        )

    should_yield = pause_check(run.id, send)  # past TRAINING_SLICE_S, when other runs wait
    skipped = 0  # pauses given up: the disk had no room for the state a pause keeps
    while True:
        try:
            net, oof = cross_fit(
                backbone.state_dict(),
                config.model,
                cache.view(labeled),
                y,
                tune,
                device=device,
                should_stop=monitor.should_stop,
                should_yield=should_yield,
                done=done,
                current=current,
                progress=progress,
            )
            break
        except Stopped:
            if monitor.lost.is_set():
                raise LostClaim(run.id) from None
            finish(run, RunStatus.CANCELLED)
            finetune_paused_path(run.id).unlink(missing_ok=True)
            return "cancelled"
        except Paused as stop:
            seconds = seconds_before + time.monotonic() - start
            kept = {"ids": labeled, "y": y, "label_ids": label_ids, "pauses": pauses + 1, "seconds": seconds}
            try:
                _paused_save(run.id, {**kept, "done": stop.done, "current": stop.current})
            except OSError as exc:
                if disk_full(exc) is None:
                    raise
                # Pausing without its state would throw away minutes of training: it goes on from
                # where it stopped, in this claim, and the waiting run waits for it as before.
                log.warning("probe run %s: no disk space to pause the fine-tuning (%s), it goes on", run.id, exc)
                done, current, should_yield, skipped = stop.done, stop.current, None, skipped + 1
                continue
            where = f"network {len(stop.done) + 1} of {stop.total}"
            if stop.current is not None:
                where += f", epoch {stop.current['epoch'] + 1},"
            return paused(run, f"{where} of its fine-tuning", send)
    t = probe.trained
    # The probe's own out-of-fold scores come from 5 folds, the networks' from 3: compared on the
    # networks' folds, each has learned from the same rows.
    same = fit_probe(x, y, ProbeConfig(folds=tune.folds, seed=tune.seed, weight_decays=(probe.weight_decay,)))
    frozen_map = evaluate(y[:, t], same.oof_scores[:, t], same.thresholds[t]).map
    candidates = {"finetuned": oof[:, t], "ensemble": (same.oof_scores[:, t] + oof[:, t]) / 2}
    thresholds = {name: best_f1_thresholds(y[:, t], scores) for name, scores in candidates.items()}
    maps = {name: evaluate(y[:, t], scores, thresholds[name]).map for name, scores in candidates.items()}
    kept = choose_scorer({"features": frozen_map, **maps})
    monitor.update(eta_at=None)
    doubt = probe.oof_scores.copy()
    doubt[:, t] = candidates["ensemble"]
    if kept != "features":
        probe.oof_scores[:, t] = candidates[kept]
        probe.thresholds[t] = thresholds[kept]
        save_net(finetuned_path(run.id), net, tune)
    info = {
        "cv_map": maps["finetuned"],
        "frozen_cv_map": frozen_map,
        "ensemble_cv_map": maps["ensemble"],
        "kept": kept,
        "mistakes_ranked_by": "ensemble",
        "images": len(labeled),
        "seconds": round(seconds_before + time.monotonic() - start, 1),
        "paused": pauses,
        **({"pause_skipped": "no disk space for its state"} if skipped else {}),
    }
    finetune_paused_path(run.id).unlink(missing_ok=True)
    return kept, info, doubt


def _paused_save(run_id: int, kept: dict) -> None:
    """A paused fine-tuning: its images, labels, finished folds' scores and the network under way
    (labeling.ml.finetune.Paused), written atomically."""
    import torch

    arrays = {k: torch.from_numpy(np.ascontiguousarray(kept[k])) for k in ("ids", "y", "label_ids")}
    done = {int(k): torch.from_numpy(v) for k, v in kept["done"].items()}
    with replaced(finetune_paused_path(run_id)) as f:
        torch.save({**kept, **arrays, "done": done}, f)


def _paused_fit(run_id: int, label_ids: np.ndarray) -> dict | None:
    """What a fine-tuning stage kept when it paused (``_paused_save``), or None: never paused, or the
    project's labels changed since (it starts over on today's labels), or the file is unreadable."""
    import torch

    try:
        saved = torch.load(finetune_paused_path(run_id), map_location="cpu", weights_only=True)
        kept = {
            **saved,
            **{k: saved[k].numpy() for k in ("ids", "y", "label_ids")},
            "done": {int(k): v.numpy() for k, v in saved["done"].items()},
            "pauses": int(saved["pauses"]),
            "seconds": float(saved["seconds"]),
        }
    except FileNotFoundError:
        return None
    except Exception as exc:  # truncated or foreign: the fine-tuning starts over
        log.warning("probe run %s: paused fine-tuning unreadable (%r), starting over", run_id, exc)
        return None
    return kept if np.array_equal(kept["label_ids"], label_ids) else None


def _score_blocks(run: TrainingRun, monitor: RunMonitor, blocks: list[int], send_shard: ShardSend) -> str:
    if settings.SUGGEST_PARALLEL and len(blocks) > 1:
        # Which blocks make the run whole is kept on the run: the shard that writes the last of
        # them finishes it (finish_if_complete), from the database, not from a chord's
        # counter in the result backend, which a broker restart loses.
        monitor.update(config={**run.config, "suggest_blocks": blocks})
        unsent = [b for b in blocks if not send_shard(run.id, b)]
        if not unsent:
            return "sharded"
        blocks = unsent  # the broker went away: score what it did not take here
        log.warning("probe run %s: scoring blocks %s here, the broker did not take them", run.id, unsent)
    for block in blocks:
        if monitor.lost.is_set():
            raise LostClaim(run.id)
        if monitor.cancelled.is_set():
            finish(run, RunStatus.CANCELLED)
            return "cancelled"
        suggest_block(run.id, block, run.worker)
    return finalise(run.id)


def _nothing_to_fit(run: TrainingRun, metrics: dict, message: str) -> str:
    """A fit after the first few submissions, before any label has 3 of each: nothing to suggest
    yet, which is not a failure. The project keeps the suggestions it has (if any); this run
    writes none and says what it needs."""
    metrics.update(message=message, trust={"still_learning": message})
    if not finish(run, RunStatus.SUCCEEDED, metrics=metrics):
        raise LostClaim(run.id)
    return "succeeded"


def log_probe_metrics(run: TrainingRun, metrics: dict) -> None:
    """The probe's metrics as TensorBoard scalars, in its own run's events and in its backbone's
    (step: the number of labeled images), so a pretraining's events show how good its probes were."""
    from labeling.ml.tracking import TrainLog

    cv = metrics.get("cv") or {}
    values = {"probe/map": cv.get("map"), "probe/micro_f1": cv.get("micro_f1"), "probe/macro_f1": cv.get("macro_f1")}
    for name, ap, f1 in zip(cv.get("labels", []), cv.get("ap", []), cv.get("f1", [])):
        values[f"probe_ap/{name}"] = ap
        values[f"probe_f1/{name}"] = f1
    for owner in (run.id, run.backbone_run_id):
        if owner is not None:
            with TrainLog(run_file(owner, "tensorboard")) as board:
                board.scalars(values, step=int(metrics.get("labeled", 0)))


# ---------------------------------------------------------------------------------------------
# One block, and the end of a run


def suggest_block(run_id: int, block: int, worker: str) -> str:
    """Score the not yet submitted images of one block and write their suggestions (idempotent)."""
    from labeling.ml.probe import load_probe

    run = TrainingRun.objects.get(pk=run_id)
    if not TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now()):
        return "not running"
    embedding_set = embedding_set_of(run.backbone_run_id)
    probe = load_probe(probe_path(run_id))
    s = embedding_set.block_size
    ids = block_ids(run.project_id, block, s, SCORED_STATUSES)
    if probe.scorer == "finetuned":
        pool, raw = _finetuned_scores(run, embedding_set.resolution, ids)
    elif probe.scorer == "ensemble":  # the frozen probe's and the network's probabilities averaged
        tuned_ids, tuned = _finetuned_scores(run, embedding_set.resolution, ids)
        feature_ids, features = block_features(embedding_set=embedding_set, block=block, ids=tuned_ids)
        pool, at_tuned, at_features = np.intersect1d(tuned_ids, feature_ids, assume_unique=True, return_indices=True)
        raw = (tuned[at_tuned] + probe.predict_proba(features[at_features])) / 2 if len(pool) else tuned[:0]
    else:
        pool, features = block_features(embedding_set=embedding_set, block=block, ids=ids)
        raw = probe.predict_proba(features) if len(pool) else np.zeros((0, len(probe.label_ids)), np.float32)
    scores = uncertainty(raw, probe.thresholds) if len(pool) else np.zeros(0)
    # What people see is calibrated, and pre-ticked only at the label's precision-targeted threshold.
    probs = probe.calibrated(raw)
    with transaction.atomic():
        Suggestion.objects.filter(run_id=run_id, image_id__gte=block * s, image_id__lt=(block + 1) * s).delete()
        ImageUncertainty.objects.filter(run_id=run_id, image_id__gte=block * s, image_id__lt=(block + 1) * s).delete()
        write_suggestions(
            run_id=run_id,
            pool=pool,
            label_ids=probe.label_ids,
            probs=probs,
            thresholds=probe.confident,
            trained=probe.trained,
            scores=scores,
        )
        labels = (run.metrics or {}).get("labels") or []
        rare_write_block(
            run_id=run_id,
            block=block,
            s=s,
            pool=pool,
            probs=probs,
            label_ids=probe.label_ids,
            positives=[r["positives"] for r in labels] if len(labels) == len(probe.label_ids) else None,
            trained=probe.trained,
        )
        SuggestionShard.objects.update_or_create(
            run_id=run_id, block=block, defaults={"worker": worker, "images": len(pool), "finished_at": timezone.now()}
        )
    TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now())
    return f"block {block}: {len(pool)} images"


def _finetuned_scores(run: TrainingRun, resolution: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the ids that could be scored, their (N, L) probabilities) by the run's fine-tuned network,
    from the pretraining's image cache (an image imported since is decoded into it now)."""
    import torch

    from labeling.ml.finetune import predict

    path = finetuned_path(run.id)
    net = _net(str(path), path.stat().st_mtime_ns)
    cache, cached = fill_cache(run.project_id, resolution, ids=ids)
    if not len(cached):
        return cached, np.zeros((0, net.head.out_features), np.float32)
    return cached, predict(net, cache.view(cached), device="cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=1)
def _net(path: str, mtime_ns: int):
    """A run's fine-tuned network, loaded once per worker process for all the blocks it scores
    (``mtime_ns``: a file written again is loaded again)."""
    from labeling.ml.finetune import load_net

    return load_net(path)


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
    if run.status == RunStatus.RUNNING:  # before the swap, so the hybrid order comes in with the suggestions
        _curation("the hybrid order", hybrid_write, run_id=run_id)
    with transaction.atomic():
        ProjectModelState.objects.select_for_update().filter(project_id=run.project_id).first()  # one swap at a time
        swap = _swaps_in(run)
        fields = {} if swap else {"metrics": {**(run.metrics or {}), "shown": False}}
        if not TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.SUCCEEDED, finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields
        ):
            return "not running"
        if swap:
            ProjectModelState.objects.update_or_create(project_id=run.project_id, defaults={"probe_run": run})
    run_finished_emit(run_id=run_id)
    if not swap:
        return "succeeded"
    suggestions_refreshed_emit(project_id=run.project_id, run_id=run_id)
    # The old runs' rows are invisible from the swap on; remove them after it. Not a run still at
    # work: a fine-tuning stage that paused for this one, or is writing its shards.
    old = TrainingRun.objects.filter(
        project_id=run.project_id, kind__in=(RunKind.PROBE, RunKind.EXTERNAL), id__lt=run.id
    ).exclude(status__in=ACTIVE_STATUSES)
    Suggestion.objects.filter(run__in=old).delete()
    ImageUncertainty.objects.filter(run__in=old).delete()
    CurationScore.objects.filter(run__in=old).delete()
    auto_accept_apply(run_id=run_id)  # a no-op unless the project turned auto-accept on
    return "succeeded"


def _swaps_in(run: TrainingRun) -> bool:
    """Whether a probe fit that is done replaces the suggestions shown: yes unless a newer fit is
    shown, or the one shown is a fine-tuned model the measurements put above this frozen probe.
    - A fine-tuning stage that paused for a newer first stage still replaces that one's frozen probe
      when its network (or the average) beat the frozen probe on its own labels: a better model on
      a few labels fewer; its follow (probe_follow) fine-tunes on the newer labels. Else it is
      recorded with ``shown: false``.
    - The other way round, a first stage (a frozen probe, in seconds) does not replace a fine-tuned
      model that kept its network or the average unless it measures at least as well (out-of-fold
      mAP) or has learned a label that one has not: under steady labeling the two would otherwise
      take turns, a refit's suggestions worse than those they replace until its own fine-tuning
      came in. It is recorded with ``shown: false``; its fine-tuning (queued by probe_follow) is
      newer and swaps in."""
    current = TrainingRun.objects.filter(pk=current_probe_run_id(project_id=run.project_id)).first()
    if current is None:
        return True
    if current.id < run.id:
        return run.finetune_stage or not _kept_network(current) or _measures_up(run, current)
    return run.finetune_stage and _kept_network(run) and current.kind == RunKind.PROBE and not current.finetune_stage


def _kept_network(run: TrainingRun) -> bool:
    """A fine-tuning stage whose suggestions come from its network or the average, not the frozen probe."""
    kept = ((run.metrics or {}).get("finetune") or {}).get("kept")
    return run.kind == RunKind.PROBE and run.finetune_stage and kept in ("finetuned", "ensemble")


def _measures_up(run: TrainingRun, shown: TrainingRun) -> bool:
    """Whether ``run`` is at least as good as ``shown`` by what each measured on its own labels:
    the out-of-fold mAP over its trained labels, or a trained label ``shown`` lacks."""
    mine, theirs = (run.metrics or {}).get("cv") or {}, (shown.metrics or {}).get("cv") or {}
    if set(mine.get("labels") or ()) - set(theirs.get("labels") or ()):
        return True
    if mine.get("map") is None or theirs.get("map") is None:
        return True
    return mine["map"] >= theirs["map"]


def suggestions_refreshed_emit(*, project_id: int, run_id: int) -> None:
    """New suggestions are shown (a probe fit or an external run swapped in): webhooks may pick them up."""
    from annotator.extensions import event_emit

    counts = Suggestion.objects.filter(run_id=run_id).aggregate(
        suggestions=Count("id"), confident=Count("id", filter=Q(predicted=True))
    )
    event_emit(project_id=project_id, event="suggestions.refreshed", data={"run_id": run_id, **counts})


def _curation(what: str, write: Callable[..., int], **kwargs) -> int | None:
    """A curation ranking (labeling/curation.py) is extra: when it fails the suggestions still
    land, and the log says why the order is missing."""
    try:
        return write(**kwargs)
    except Exception:
        log.exception("%s could not be written (%s)", what, kwargs.get("run_id"))
        return None


def write_suggestions(
    *,
    run_id: int,
    pool: np.ndarray,
    label_ids: np.ndarray,
    probs: np.ndarray,
    thresholds: np.ndarray,
    trained: np.ndarray,
    scores: np.ndarray,
) -> int:
    """Insert the suggestion rows of the trained labels and one uncertainty per image (the larger of
    ``scores`` and the current detector's box doubt: labeling/detection.py); COPY on PostgreSQL (a
    million images x six labels in a minute, not an hour), bulk_create elsewhere."""
    columns = np.flatnonzero(trained)
    if not len(pool):
        return 0
    project_id = TrainingRun.objects.filter(pk=run_id).values_list("project_id", flat=True).first()
    if project_id is not None:
        scores = np.maximum(np.asarray(scores, np.float64), box_uncertainty_of(project_id=project_id, ids=pool))
    image = np.repeat(np.asarray(pool, np.int64), len(columns))
    label = np.tile(np.asarray(label_ids, np.int64)[columns], len(pool))
    p = probs[:, columns].reshape(-1).astype(np.float64)
    predicted = (probs[:, columns] >= thresholds[columns]).reshape(-1)
    if connection.vendor == "postgresql":
        _copy(
            Suggestion,
            ["run_id", "image_id", "label_id", "probability", "predicted"],
            zip([run_id] * len(image), image.tolist(), label.tolist(), p.tolist(), predicted.tolist()),
        )
        _copy(
            ImageUncertainty,
            ["run_id", "image_id", "score"],
            zip([run_id] * len(pool), np.asarray(pool).tolist(), np.asarray(scores, np.float64).tolist()),
        )
    else:  # one prepared INSERT for every row: Django's bulk_create spent 2.5 s of a 10 s refit building models
        _insert_many(
            Suggestion,
            ["run_id", "image_id", "label_id", "probability", "predicted"],
            zip([run_id] * len(image), image.tolist(), label.tolist(), p.tolist(), predicted.astype(int).tolist()),
        )
        _insert_many(
            ImageUncertainty,
            ["run_id", "image_id", "score"],
            zip([run_id] * len(pool), np.asarray(pool).tolist(), np.asarray(scores, np.float64).tolist()),
        )
    return len(image)


def _insert_many(model, columns: list[str], rows) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})", list(rows))


def _copy(model, columns: list[str], rows) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
