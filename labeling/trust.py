"""Trust in a probe run's suggestions: calibration, precision-targeted thresholds and the abstain
line, fed from the database to the pure logic in ``labeling.ml.calibrate`` / ``confidence``.

At a fit:
- the out-of-fold scores (no row scored by a model fitted to it) are calibrated per label by Platt
  scaling. The map used for the suggestions is fitted on all of them; the ECE in the metrics and
  the thresholds are computed on cross-fitted calibrated scores (each row calibrated by a map
  fitted without it), so neither is judged on what it was fitted to;
- each label's threshold is the lowest calibrated probability whose 95 % lower bound of precision
  meets the label's target. The counts pool the out-of-fold rows and the accept / reject decisions
  taken on the replaced run's shown suggestions of images that are not in the labeled set (an
  image decided and then submitted is counted once, as a labeled row), from that run's threshold up;
- a near-chance label (AP hardly above its prevalence) is never confident.

Between fits, the dashboard's estimate of a label's precision adds the current run's decisions to
the counts stored with the run (``live_estimate``), and so does every rejection (an acceptance
only raises a bound; ``decision_noted``; ``box_decision_noted`` for a detector's boxes, by the same
rule, reading the run once for both of its checks): when the
rejections pull a label's bound below its target, its suggestions stop being pre-ticked at once,
not at the next fit; and the rejections of a label's drawn boxes that are not confident hide
them once their bound falls below SHOW_PRECISION (``_hide_if_not_worth_a_look``). (The opposite
move, a lower threshold, needs the out-of-fold scores, so it waits for the fit.)
"""

from __future__ import annotations

import numpy as np

from labeling.ml.calibrate import Platt, cross_fitted, expected_calibration_error, fit_platt
from labeling.ml.confidence import LabelConfidence, label_lift, near_chance, precision_threshold, still_learning
from labeling.ml.confidence import precision_steps, wilson_lower
from django.db import transaction
from django.db.models import Count, Q, QuerySet

from labeling.models import AuditResult, AutoTag, BoxDecision, BoxSuggestion, BoxSuggestionDecision, Decision
from labeling.models import ProjectModelState
from labeling.models import RunKind, Suggestion, SuggestionDecision, TrainingRun

DEFAULT_TARGET = 0.9
AUTO_TARGET = 0.97
# Which suggested boxes the annotate page draws for a person to judge (a confident one always).
# Judging a drawn box costs a look and a key even when it is wrong; accepting a right one saves a
# drag. By the Keystroke-Level Model (bench/box_actions.py: a look M 1.35 s, a key 0.28 s, a drag
# 2.4 s) a right box saves 2.4 s and a wrong one costs 1.63 s: drawing pays from a precision of
# 1.63 / (1.63 + 2.4) = 0.40. So a label's box is drawn from the lowest score at which the 95 %
# lower bound of such boxes' precision (the confident rule's, at this target) is SHOW_PRECISION.
# With the page's 0.3 floor alone a weak CPU fit drew 8 boxes an image where 1.8 were true
# (box_actions.json of 2026-12-03: 133 of 165 rejected). BOX_SHOWN_FROM: the page's own floor
# (twinlabel/web/static/web/annotate/store.js), under which nothing unconfident is drawn.
SHOW_PRECISION = 0.4
BOX_SHOWN_FROM = 0.3


def label_target(state: ProjectModelState | None, label_id: int) -> float:
    if state is None:
        return DEFAULT_TARGET
    return float(state.label_targets.get(str(label_id), state.precision_target))


def trust_fit(
    *,
    project_id: int,
    y: np.ndarray,
    oof: np.ndarray,
    trained: np.ndarray,
    ap: list[float | None],
    label_ids: np.ndarray,
    names: list[str],
    labeled_ids: np.ndarray,
    positives: np.ndarray,
    pool_decisions: bool = True,
) -> tuple[Platt, np.ndarray, dict]:
    """-> the calibration for the suggestions, (L,) confident thresholds (+inf: not confident) and
    the run's "trust" metrics. ``ap``: out-of-fold AP per trained label, in order. ``pool_decisions``:
    False for another model's scores (an external run), which the decisions on our run's
    probabilities say nothing about."""
    state = ProjectModelState.objects.filter(project_id=project_id).select_related("probe_run").first()
    t = np.flatnonzero(trained)
    platt = Platt.identity(len(label_ids))
    thresholds = np.full(len(label_ids), np.inf)
    fitted = fit_platt(y[:, t], oof[:, t])
    platt.a[t], platt.b[t] = fitted.a, fitted.b
    held_out = cross_fitted(y[:, t], oof[:, t])
    previous = _previous_thresholds(state) if pool_decisions else {}
    audits = audit_counts(project_id=project_id)
    labels = []
    for j, label_id in enumerate(label_ids.tolist()):
        entry = {
            "label": names[j],
            "label_id": label_id,
            "target": label_target(state, label_id),
            "trained": bool(trained[j]),
            "positives": int(positives[j]),
        }
        if trained[j]:
            column = int(np.flatnonzero(t == j)[0])
            lift = label_lift(y[:, j], ap[column])
            decided, accepted, shown_from = _decisions(project_id, state, label_id, labeled_ids, previous)
            result = precision_threshold(
                y[:, j], held_out[:, column], entry["target"], decided=decided, accepted=accepted, shown_from=shown_from
            )
            weak = near_chance(lift)
            if weak:
                result = LabelConfidence(float("inf"), result.lower_bound, result.precision, result.predictions, 0.0)
            thresholds[j] = result.threshold
            correct = round(result.precision * result.predictions) if result.precision is not None else 0
            entry.update(result.to_dict(), lift=lift, near_chance=weak, decisions=len(decided), correct=correct)
            entry.update(
                _auto_threshold(
                    state,
                    entry,
                    y[:, j],
                    held_out[:, column],
                    audits.get(label_id, (0, 0)),
                    decided=decided,
                    accepted=accepted,
                    shown_from=shown_from,
                )
            )
        else:
            entry.update(confident=False, threshold=None, near_chance=True)
        labels.append(entry)
    metrics = {
        "default_target": state.precision_target if state else DEFAULT_TARGET,
        "ece": {
            "uncalibrated": expected_calibration_error(y[:, t], oof[:, t]),
            "calibrated": expected_calibration_error(y[:, t], held_out),
        },
        "labels": labels,
        "still_learning": still_learning(labels),
    }
    return platt, thresholds, metrics


def auto_target(state: ProjectModelState | None, label_target: float) -> float:
    """Auto-accept's target: the project's stricter one, never below the label's own."""
    return max(state.auto_accept_target if state else AUTO_TARGET, label_target)


def _auto_threshold(
    state: ProjectModelState | None,
    entry: dict,
    y: np.ndarray,
    scores: np.ndarray,
    audit: tuple[int, int],
    **decisions,
) -> dict:
    """The stricter threshold at which a label's suggestions may become tags by themselves: the
    same rule as the confident one at ``auto_target``, for a confident label only, and none while
    the audits of its auto-accepted tags say (95 % upper bound) its precision is below that target."""
    target = auto_target(state, entry["target"])
    confirmed, audited = audit
    out = {"auto_target": target, "auto_threshold": None, "audit_confirmed": confirmed, "audited": audited}
    if audited and wilson_upper(confirmed, audited) < target:
        return {**out, "auto_withdrawn": "the audits of its auto-accepted tags fall short of the target"}
    if not entry.get("confident"):
        return out
    result = precision_threshold(y, scores, target, **decisions)
    return {**out, "auto_threshold": result.threshold if result.confident else None}


def wilson_upper(successes: int, n: int) -> float:
    """The 95 % Wilson upper bound of a proportion (1 where n is 0)."""
    return float(1 - wilson_lower(n - successes, n)) if n else 1.0


def audit_counts(*, project_id: int) -> dict[int, tuple[int, int]]:
    """{label id: (confirmed, audited)} over every audited auto-accepted tag of the project."""
    rows = (
        AutoTag.objects.filter(
            image__project_id=project_id, audit_result__in=[AuditResult.CONFIRMED, AuditResult.REJECTED]
        )
        .values("label_id")
        .annotate(confirmed=Count("id", filter=Q(audit_result=AuditResult.CONFIRMED)), audited=Count("id"))
    )
    return {r["label_id"]: (r["confirmed"], r["audited"]) for r in rows}


def _previous_thresholds(state: ProjectModelState | None) -> dict[int, float]:
    run = state.probe_run if state else None
    # Decisions on an external model's suggestions were taken on its scores, not on a probe's.
    if run is None or run.kind != RunKind.PROBE:
        return {}
    return {
        entry["label_id"]: entry["threshold"]
        for entry in (run.metrics.get("trust") or {}).get("labels", [])
        if entry.get("threshold") is not None
    }


def _decisions(
    project_id: int, state: ProjectModelState | None, label_id: int, labeled_ids: np.ndarray, previous: dict[int, float]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Decisions on the replaced run's confident suggestions of images outside the labeled set."""
    if state is None or state.probe_run_id is None or label_id not in previous:
        return np.zeros(0), np.zeros(0, bool), float("inf")
    rows = np.array(
        list(
            SuggestionDecision.objects.filter(run_id=state.probe_run_id, label_id=label_id).values_list(
                "image_id", "probability", "decision"
            )
        ),
        dtype=object,
    ).reshape(-1, 3)
    keep = ~np.isin(rows[:, 0].astype(np.int64), labeled_ids)
    rows = rows[keep]
    return rows[:, 1].astype(np.float64), rows[:, 2] == Decision.ACCEPTED, float(previous[label_id])


def live_estimate(*, entry: dict, accepted: int, rejected: int) -> dict:
    """A label's precision estimate at its threshold with the decisions taken since the fit added."""
    measured = int(entry.get("predictions") or 0) + accepted + rejected
    correct = int(entry.get("correct") or 0) + accepted
    return {
        "precision": correct / measured if measured else None,
        "precision_lower_bound": float(wilson_lower(correct, measured)) if measured else None,
        "measured": measured,
    }


def decision_noted(*, run_id: int, label_id: int, score: float | None = None) -> bool:
    """After a decision on a suggested tag of ``run_id`` (``score``: its probability; None: any,
    as after a bulk decision): re-check its label's bound with the run's decisions added; True when
    the label stopped being confident. One small query, two when the decision counts."""
    entry = _trust_entry(run_id, label_id, tag_trust_of)
    return entry is not None and _withdraw_if_short(
        entry=entry,
        score=score,
        run_id=run_id,
        label_id=label_id,
        decisions=SuggestionDecision.objects.filter(run_id=run_id, label_id=label_id),
        shown_at="probability",
        accepted=Q(decision=Decision.ACCEPTED),
        suggestions=Suggestion.objects.filter(run_id=run_id, label_id=label_id, predicted=True),
        trust_of=tag_trust_of,
    )


def box_decision_noted(*, run_id: int, label_id: int, score: float | None = None) -> bool:
    """The same for a decision on a suggested box of a detector run (or an external import's boxes):
    accepted or adjusted counts as right (the detector found the object), rejected as wrong. Then
    the same for the label's drawn boxes that are not confident (``_hide_if_not_worth_a_look``)."""
    entry = _trust_entry(run_id, label_id, box_trust_of)
    if entry is None:
        return False
    decisions = BoxSuggestionDecision.objects.filter(run_id=run_id, label_id=label_id)
    accepted = ~Q(decision=BoxDecision.REJECTED)
    withdrawn = _withdraw_if_short(
        entry=entry,
        score=score,
        run_id=run_id,
        label_id=label_id,
        decisions=decisions,
        shown_at="score",
        accepted=accepted,
        suggestions=BoxSuggestion.objects.filter(run_id=run_id, label_id=label_id, predicted=True),
        trust_of=box_trust_of,
    )
    hidden = _hide_if_not_worth_a_look(
        entry=entry, score=score, run_id=run_id, label_id=label_id, decisions=decisions, accepted=accepted
    )
    return withdrawn or hidden


def _trust_entry(run_id: int, label_id: int, trust_of) -> dict | None:
    """A label's trust entry of a run (``trust_of``: where the run keeps it), read once per decision
    for both rules; None when the run or the entry is gone."""
    return _entry_of(TrainingRun.objects.filter(pk=run_id).only("metrics", "kind").first(), label_id, trust_of)


def _entry_of(run: TrainingRun | None, label_id: int, trust_of) -> dict | None:
    labels = trust_of(run).get("labels", []) if run else []
    return next((e for e in labels if e.get("label_id") == label_id), None)


def _hide_if_not_worth_a_look(
    *, entry: dict, score: float | None, run_id: int, label_id: int, decisions: QuerySet, accepted: Q
) -> bool:
    """The show rule's live half: the held-out counts at the label's "shown_from" plus the decisions
    taken since on its boxes from there up. When their 95 % lower bound of precision falls below
    SHOW_PRECISION, the label's boxes that are not confident and score under the lowest higher
    cutoff that still reaches it (the fit's "shown_steps", with the decisions from there up) stop
    being drawn at once, and its "shown_from" becomes that cutoff ("shown_raised" says from where);
    with no such cutoff, all of them (its "shown_from" becomes its confident threshold, or None, and
    "shown_withdrawn" says why). So a label whose boxes barely pay loses its lowest-scoring ones,
    not all of them, after a few rejections. A label with no held-out counts (drawn from the page's
    floor, nothing to judge it by) waits for the fit: with no counts to add to, two rejections
    would hide it. A decision on a box under the label's "shown_from" (``score``) does not count, so
    it changes nothing. True when it hid boxes."""
    if entry.get("shown_counts") is None or entry.get("shown_from") is None:
        return False
    shown_from = entry["shown_from"]
    if score is not None and score < shown_from:
        return False
    threshold = entry.get("threshold") if entry.get("confident") else None
    if threshold is not None and shown_from >= threshold:
        return False  # only its confident boxes are drawn: the confident rule judges those
    counts = decisions.filter(score__gte=shown_from).aggregate(
        accepted=Count("id", filter=accepted), decided=Count("id")
    )
    estimate = live_estimate(
        entry=entry["shown_counts"], accepted=counts["accepted"], rejected=counts["decided"] - counts["accepted"]
    )
    if estimate["precision_lower_bound"] is None or estimate["precision_lower_bound"] >= SHOW_PRECISION:
        return False
    first = (entry.get("shown_raised") or {}).get("shown_from", shown_from)  # where the fit drew them from
    raised = _raised_cutoff(entry, decisions, below=threshold)
    if raised is not None:
        cutoff, step_counts = raised
        hidden = BoxSuggestion.objects.filter(
            run_id=run_id, label_id=label_id, predicted=False, shown=True, score__lt=cutoff
        )

        def change(fresh: dict) -> None:  # unless another rejection raised it as far already
            if fresh.get("shown_from") is not None and fresh["shown_from"] < cutoff:
                fresh.update(
                    shown_from=cutoff, shown_counts=step_counts, shown_raised={**estimate, "shown_from": first}
                )
    else:
        hidden = BoxSuggestion.objects.filter(run_id=run_id, label_id=label_id, predicted=False, shown=True)
        withdrawn = {**estimate, "shown_from": first}

        def change(fresh: dict) -> None:  # its confident threshold as it is now (a rejection may withdraw it)
            fresh.update(
                shown_from=fresh.get("threshold") if fresh.get("confident") else None, shown_withdrawn=withdrawn
            )

    hidden.update(shown=False)
    trust_entry_update(run_id=run_id, label_id=label_id, trust_of=box_trust_of, change=change)
    return True


def _raised_cutoff(entry: dict, decisions: QuerySet, *, below: float | None) -> tuple[float, dict] | None:
    """The lowest of the fit's "shown_steps" above the label's "shown_from" (and under its confident
    ``below``) whose held-out counts plus the box decisions from there up (accepted or adjusted:
    right) keep the 95 % lower bound at SHOW_PRECISION: (that cutoff, its counts), or None. One
    query, of the decisions' scores."""
    steps = [
        s for s in entry.get("shown_steps") or [] if s[0] > entry["shown_from"] and (below is None or s[0] < below)
    ]
    if not steps:
        return None
    rows = list(decisions.filter(score__gte=steps[0][0]).values_list("score", "decision"))
    scores = np.array([score for score, _ in rows], dtype=np.float64)
    right = np.array([decision != BoxDecision.REJECTED for _, decision in rows], dtype=bool)
    for cutoff, predictions, correct in steps:
        at = scores >= cutoff
        measured, good = predictions + int(at.sum()), correct + int(right[at].sum())
        if measured and wilson_lower(good, measured) >= SHOW_PRECISION:
            return cutoff, {"predictions": int(predictions), "correct": int(correct)}
    return None


def tag_trust_of(run: TrainingRun) -> dict:
    """A run's tag "trust" metrics (a probe's, or an external import's tag predictions')."""
    return (run.metrics or {}).get("trust") or {}


def _withdraw_if_short(
    *,
    entry: dict,
    score: float | None,
    run_id: int,
    label_id: int,
    decisions: QuerySet,
    shown_at: str,
    accepted: Q,
    suggestions: QuerySet,
    trust_of,
) -> bool:
    """One rule for tags and boxes: the run's stored counts at the label's threshold plus the
    decisions taken since on suggestions at or above it (``shown_at``: the decision's score field);
    when the 95 % lower bound falls below the target, the label's remaining suggestions stop being
    confident and the run's trust entry says why (``entry`` too, for the show rule after it). A
    decision under the threshold (``score``) does not count, so it changes nothing. ``trust_of``:
    where the run keeps that trust (an external import keeps its boxes' under "boxes",
    ``box_trust_of``)."""
    if not entry.get("confident"):
        return False
    if score is not None and entry.get("threshold") is not None and score < entry["threshold"]:
        return False
    if entry.get("threshold") is not None:
        decisions = decisions.filter(**{f"{shown_at}__gte": entry["threshold"]})
    counts = decisions.aggregate(accepted=Count("id", filter=accepted), decided=Count("id"))
    estimate = live_estimate(entry=entry, accepted=counts["accepted"], rejected=counts["decided"] - counts["accepted"])
    if estimate["precision_lower_bound"] is None or estimate["precision_lower_bound"] >= entry["target"]:
        return False
    suggestions.update(predicted=False)
    entry.update(confident=False, threshold=None)
    trust_entry_update(
        run_id=run_id,
        label_id=label_id,
        trust_of=trust_of,
        change=lambda e: e.update(confident=False, threshold=None, withdrawn=estimate),
    )
    return True


def trust_entry_update(*, run_id: int, label_id: int, trust_of, change) -> None:
    """``change`` one label's trust entry of a run and save the run's metrics, under the run row's
    lock, read afresh: every writer of a run's trust (a decision's withdrawal, the show rule, an
    audit's) reads and writes the whole metrics JSON, so two at once would otherwise lose one's
    change (the check before it runs unlocked, so a decision that changes nothing takes no lock).
    ``trust_of``: where the run keeps that trust (``tag_trust_of``, ``box_trust_of``)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).only("metrics", "kind").first()
        entry = _entry_of(run, label_id, trust_of)
        if run is None or entry is None:
            return
        change(entry)
        TrainingRun.objects.filter(pk=run_id).update(metrics=run.metrics)


# ---------------------------------------------------------------------------------------------
# Box suggestions: the same rule, on a detector's held-out detections


def box_trust(
    *,
    project_id: int,
    label_ids: list[int],
    names: list[str],
    scores: list[np.ndarray],
    correct: list[np.ndarray],
    truths: list[int],
    ap50: list[float | None],
    labeled_ids: np.ndarray,
) -> tuple[np.ndarray, dict]:
    """A detector fit's per-label confident thresholds, by the rule tag suggestions follow
    (``precision_threshold``: the lowest score whose 95 % Wilson lower bound of precision meets the
    label's target). Per label: ``scores`` of the detections on the held-out images and whether each
    matched a truth box (IoU >= 0.5, the AP50 rule), plus the decisions people took on the replaced
    detector run's shown box suggestions (accepted or adjusted: correct; rejected: wrong), from that
    run's threshold up, on images outside ``labeled_ids`` (a decided image submitted since counts
    as labeled rows, once). Detections have no prevalence to beat: a random detector's AP50 is ~0, so
    the lift is the held-out AP50 itself, and a label under NEAR_CHANCE_LIFT is never confident.
    -> (L,) thresholds (+inf: not confident) and the run's "trust" metrics."""
    state = ProjectModelState.objects.filter(project_id=project_id).select_related("detector_run").first()
    previous = _previous_box_thresholds(state)
    previous_shown = _previous_box_shown(state)
    thresholds = np.full(len(label_ids), np.inf)
    labels = []
    for j, label_id in enumerate(label_ids):
        entry: dict = {"label": names[j], "label_id": label_id, "target": label_target(state, label_id)}
        decided, accepted, shown_from = _box_decisions(state, label_id, previous, labeled_ids)
        result = precision_threshold(
            correct[j], scores[j], entry["target"], decided=decided, accepted=accepted, shown_from=shown_from
        )
        weak = near_chance(ap50[j])
        if weak:
            result = LabelConfidence(float("inf"), result.lower_bound, result.precision, result.predictions, 0.0)
        thresholds[j] = result.threshold
        correct_n = round(result.precision * result.predictions) if result.precision is not None else 0
        # The decisions on every drawn box of the replaced run count here, not only the confident ones.
        seen, taken, drawn_from = _box_decisions(state, label_id, previous_shown, labeled_ids)
        shown = precision_threshold(
            correct[j], scores[j], SHOW_PRECISION, decided=seen, accepted=taken, shown_from=drawn_from
        )
        judged = truths[j] > 0 or len(scores[j]) > 0
        entry.update(
            result.to_dict(),
            ap50=ap50[j],
            truths=truths[j],
            near_chance=weak,
            decisions=len(decided),
            correct=correct_n,
            shown_from=_shown_from(shown, result, judged=judged),
        )
        if judged and shown.confident and shown.precision is not None:
            # What the show cutoff rests on, for box_decision_noted to add the decisions to.
            entry["shown_counts"] = {
                "predictions": shown.predictions,
                "correct": round(shown.precision * shown.predictions),
            }
            # And at the cutoffs above it, under the confident one, for decisions to raise it to.
            steps = precision_steps(
                correct[j],
                scores[j],
                start=shown.threshold,
                stop=result.threshold,
                decided=seen,
                accepted=taken,
                shown_from=drawn_from,
            )
            if len(steps) > 1:
                entry["shown_steps"] = steps
        labels.append(entry)
    return thresholds, {
        "default_target": state.precision_target if state else DEFAULT_TARGET,
        "labels": labels,
        "box_note": _box_note(labels),
    }


def _box_note(labels: list[dict]) -> str | None:
    """The annotate page's one line when the fit draws no box at all: no label confident nor precise
    enough to be worth a look (a label with nothing held out to judge it by is drawn from the page's
    floor: then there is no note). None otherwise."""
    if not labels or any(e.get("confident") or e.get("shown_from") is not None for e in labels):
        return None
    ap50 = [e["ap50"] for e in labels if e.get("ap50") is not None]
    figure = f" (held-out AP50 {float(np.mean(ap50)):.2f})" if ap50 else ""
    return (
        f"No suggested boxes yet: the detector's boxes are still wrong too often to save time{figure}. "
        "They appear once it is precise enough; each fit learns from the images submitted with boxes."
    )


def _previous_box_thresholds(state: ProjectModelState | None) -> dict[int, float]:
    run = state.detector_run if state else None
    if run is None:
        return {}
    return {
        entry["label_id"]: entry["threshold"]
        for entry in box_trust_of(run).get("labels", [])
        if entry.get("threshold") is not None
    }


def _shown_from(shown: LabelConfidence, confident: LabelConfidence, *, judged: bool) -> float | None:
    """A label's "shown_from": the lower of its show and confident cutoffs; None (never drawn, but
    confident boxes) when it has neither. A label with nothing to judge it by on the held-out images
    (no box of it, none detected) is drawn from the page's floor, as before any judging."""
    if not judged:
        return BOX_SHOWN_FROM
    if not (shown.confident or confident.confident):
        return None
    return min(shown.threshold, confident.threshold)


def _previous_box_shown(state: ProjectModelState | None) -> dict[int, float]:
    """Per label, the score from which the current detector run's boxes were drawn on the annotate
    page: its "shown_from" (a run from before it: every box from BOX_SHOWN_FROM), never under the
    page's floor; a label whose boxes were never drawn (but confident ones) has its threshold."""
    run = state.detector_run if state else None
    if run is None:
        return {}
    cutoffs = {}
    for entry in box_trust_of(run).get("labels", []):
        shown_from = entry.get("shown_from", BOX_SHOWN_FROM)
        for moved in ("shown_withdrawn", "shown_raised"):  # drawn from there until decisions hid some
            if moved in entry:
                shown_from = entry[moved]["shown_from"]  # so judged from there
        floor = None if shown_from is None else max(shown_from, BOX_SHOWN_FROM)
        drawn = [c for c in (entry.get("threshold"), floor) if c is not None]
        if drawn:
            cutoffs[entry["label_id"]] = float(min(drawn))
    return cutoffs


def box_trust_of(run: TrainingRun) -> dict:
    """The box "trust" metrics of the run whose box suggestions are current: a detector's own, or an
    external import's under "boxes" (its "trust" judges its tag predictions)."""
    metrics = run.metrics or {}
    if run.kind == RunKind.EXTERNAL:
        return (metrics.get("boxes") or {}).get("trust") or {}
    return metrics.get("trust") or {}


def _box_decisions(
    state: ProjectModelState | None, label_id: int, previous: dict[int, float], labeled_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    if state is None or state.detector_run_id is None or label_id not in previous:
        return np.zeros(0), np.zeros(0, bool), float("inf")
    labeled = set(labeled_ids.tolist())
    rows = [
        (score, decision)
        for image_id, score, decision in BoxSuggestionDecision.objects.filter(
            run_id=state.detector_run_id, label_id=label_id
        ).values_list("image_id", "score", "decision")
        if image_id not in labeled
    ]
    scores = np.array([score for score, _ in rows], dtype=np.float64)
    accepted = np.array([decision != BoxDecision.REJECTED for _, decision in rows], dtype=bool)
    return scores, accepted, float(previous[label_id])
