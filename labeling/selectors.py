"""Model-assistance reads."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db.models import Exists, FloatField, OuterRef, Subquery, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone

from annotator.compiled import Compiled
from annotator.models import Image, LabelClass
from annotator.paging import Page, keyset_page
from annotator.selectors import project_status_counts
from labeling.config import worker_device_kind
from labeling.ml.presets import describe_seconds, device_kind, estimate_seconds
from labeling.models import BoxSuggestion, BoxSuggestionDecision, ProjectModelState, RunKind, RunStatus, Suggestion
from labeling.models import SuggestionDecision, TrainingRun
from labeling.paths import run_file
from labeling.runs import current_detector_run_id, current_probe_run_id
from labeling.trust import AUTO_TARGET, DEFAULT_TARGET


_UNREAD = object()


def current_model_view(*, project_id: int) -> tuple[int | None, int | None, str | None, str | None]:
    """(the current probe run, the current detector run, the model's note, the detector's box note) in
    one query: the annotate state shows all four on every hot request. The note is
    ``_newest_probe_note``, the box note the current detector run's "box_note" (labeling.trust; an
    external import's under "boxes", as ``box_trust_of`` reads it), each read as a subquery (a
    project with no model state has run nothing, so it has no note either)."""
    rows = _MODEL_VIEW.rows(project_id=project_id)
    return rows[0] if rows else (None, None, None, None)


_MODEL_VIEW = Compiled(
    lambda project_id: ProjectModelState.objects.filter(project_id=project_id)
    .annotate(
        note=Subquery(_newest_probe_note(OuterRef("project_id"))),
        box_note=Subquery(
            TrainingRun.objects.filter(pk=OuterRef("detector_run_id"))
            # An external import's box trust lives under "boxes" (its "trust" judges its tags).
            .annotate(box_note=Coalesce(KT("metrics__trust__box_note"), KT("metrics__boxes__trust__box_note")))
            .values("box_note")[:1]
        ),
    )
    .values_list("probe_run_id", "detector_run_id", "note", "box_note")[:1],
    {"project_id": "int"},
)


def suggested_as(*, project_id: int, label_id: int | None):
    """Images the current models confidently suggest ``label_id`` for, as (a condition on images,
    their score): a tag the probe suggests, or a box the detector suggests, the score the larger of
    the tag's probability and the best such box's score. None before either model. The queue's and
    the list's "suggested as <label>" both come here."""
    probe, detector, _note, _box_note = current_model_view(project_id=project_id)
    if probe is None and detector is None:
        return None
    tag = Suggestion.objects.filter(run_id=probe, label_id=label_id, predicted=True, image_id=OuterRef("pk"))
    box = BoxSuggestion.objects.filter(run_id=detector, label_id=label_id, predicted=True, image_id=OuterRef("pk"))
    tag_p = Subquery(tag.values("probability")[:1], output_field=FloatField())
    box_p = Subquery(box.order_by("-score").values("score")[:1], output_field=FloatField())
    if detector is None:
        return Exists(tag), tag_p
    if probe is None:
        return Exists(box), box_p
    return Exists(tag) | Exists(box), Greatest(Coalesce(tag_p, Value(0.0)), Coalesce(box_p, Value(0.0)))


def image_suggestions(*, image: Image, run_id=_UNREAD) -> list[dict]:
    """The current probe's view of one image, likeliest first, with any decision already taken.
    ``run_id``: the current probe run when the caller has read it already."""
    if run_id is _UNREAD:
        run_id = current_probe_run_id(project_id=image.project_id)
    if run_id is None:
        return []
    decisions = dict(_DECISIONS.rows(image_id=image.pk))
    rows = _SUGGESTIONS.rows(run_id=run_id, image_id=image.pk)
    return [
        {"label": label, "probability": p, "predicted": predicted, "decision": decisions.get(label)}
        for label, p, predicted in rows
    ]


def image_box_suggestions(*, image: Image, run_id=_UNREAD) -> list[dict]:
    """The current detector's boxes for one image, best first, with any decision already taken
    (index box_suggestion_run_image, then the decisions of these suggestions when there are any).
    ``run_id``: the current detector run when the caller has read it already."""
    if run_id is _UNREAD:
        run_id = current_detector_run_id(project_id=image.project_id)
    if run_id is None:
        return []
    rows = _BOX_SUGGESTIONS.rows(run_id=run_id, image_id=image.pk)
    if not rows:
        return []
    decided = dict(_BOX_DECISIONS.rows(suggestion_ids=[r[0] for r in rows]))
    return [
        {
            "id": i,
            "label": label,
            "x": x,
            "y": y,
            "w": w,
            "h": h,
            "score": score,
            "predicted": predicted,
            "shown": shown,
            "decision": decided.get(i),
        }
        for i, label, x, y, w, h, score, predicted, shown in rows
    ]


# The reads above are on every annotate request once a model exists: compiled once (annotator.compiled).
_DECISIONS = Compiled(
    lambda image_id: SuggestionDecision.objects.filter(image_id=image_id).values_list("label_id", "decision"),
    {"image_id": "int"},
)
_SUGGESTIONS = Compiled(
    lambda run_id, image_id: Suggestion.objects.filter(run_id=run_id, image_id=image_id)
    .order_by("-probability")
    .values_list("label_id", "probability", "predicted"),
    {"run_id": "int", "image_id": "int"},
)
_BOX_SUGGESTIONS = Compiled(
    lambda run_id, image_id: BoxSuggestion.objects.filter(run_id=run_id, image_id=image_id)
    .order_by("-score", "id")
    .values_list("id", "label_id", "x", "y", "w", "h", "score", "predicted", "shown"),
    {"run_id": "int", "image_id": "int"},
)
_BOX_DECISIONS = Compiled(
    lambda suggestion_ids: BoxSuggestionDecision.objects.filter(suggestion_id__in=suggestion_ids).values_list(
        "suggestion_id", "decision"
    ),
    {"suggestion_ids": "ids"},
)


def suggestion_settings(*, project_id: int) -> dict:
    """The precision targets suggestions must prove, and each label's standing at the current fit."""
    state = ProjectModelState.objects.filter(project_id=project_id).select_related("probe_run").first()
    fit = (state.probe_run.metrics.get("trust") or {}) if state and state.probe_run else {}
    by_label = {e.get("label_id"): e for e in fit.get("labels", [])}
    overrides = state.label_targets if state else {}
    target = state.precision_target if state else DEFAULT_TARGET
    return {
        "precision_target": target,
        "label_targets": dict(overrides),
        "auto_accept": state.auto_accept if state else False,
        "auto_accept_target": state.auto_accept_target if state else AUTO_TARGET,
        "audit_rate": state.audit_rate if state else 0.1,
        "labels": [
            {
                "label_id": label_id,
                "label": name,
                "target": overrides.get(str(label_id), target),
                "override": str(label_id) in overrides,
                **{
                    k: by_label.get(label_id, {}).get(k)
                    for k in ("confident", "threshold", "precision_lower_bound", "near_chance", "auto_threshold")
                },
            }
            for label_id, name in LabelClass.objects.filter(project_id=project_id)
            .order_by("order", "id")
            .values_list("id", "name")
        ],
    }


def _newest_probe_note(project_id):
    """The annotate page's one line when the model abstains: the newest finished fit's "still learning"
    message (a fit with nothing to suggest is not swapped in, yet it speaks). Only the one key leaves
    the database: a run's metrics hold per-label tables and curves."""
    return (
        TrainingRun.objects.filter(project_id=project_id, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED)
        .order_by("-id")
        .values_list("metrics__trust__still_learning", flat=True)[:1]
    )


def pretrain_estimate(*, project, config: dict, recent_runs: list[dict] | None = None) -> dict:
    """How long ``config`` would take on this project, on the worker's device, before it starts: from
    a rate this project's runs reached on the same settings when there is one, else the preset table.
    ``recent_runs``: the project's runs as dicts (config, device, images_per_s), when the caller has them."""
    kind = worker_device_kind()
    images = project_status_counts(project_id=project.id)["total"]  # the counters: no COUNT(*) per poll
    if recent_runs is None:
        recent_runs = list(
            TrainingRun.objects.filter(project_id=project.id, kind=RunKind.PRETRAIN, images_per_s__gt=0).values(
                "kind", "config", "device", "images_per_s"
            )[:20]
        )
    measured = None
    for run in recent_runs:
        same = all(run["config"].get(k) == config.get(k) for k in ("resolution", "small_stem", "batch_size"))
        if run["kind"] == RunKind.PRETRAIN and run["images_per_s"] and same and device_kind(run["device"]) == kind:
            measured = run["images_per_s"]
            break
    seconds = estimate_seconds(config=config, images=max(images, 1), kind=kind, measured_images_per_s=measured)
    return {
        "seconds": round(seconds, 1),
        "text": describe_seconds(seconds),
        "device": kind,
        "images": images,
        "measured": measured is not None,
        "needs_confirmation": seconds > settings.PRETRAIN_CONFIRM_ABOVE_S,
        "confirm_above_s": settings.PRETRAIN_CONFIRM_ABOVE_S,
    }


def run_eta_s(run: TrainingRun) -> float | None:
    """Seconds until an active pretraining is done: the worker's last estimate (from its measured
    step rate) counted down, or before its first report the estimate made when it was queued. A
    probe fit that fine-tunes has one while it does (from the networks it has trained)."""
    if run.status == RunStatus.RUNNING and run.eta_at is not None and run.kind in (RunKind.PRETRAIN, RunKind.PROBE):
        return max(0.0, round((run.eta_at - timezone.now()).total_seconds(), 1))
    if run.kind != RunKind.PRETRAIN or run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return None
    estimate = (run.metrics or {}).get("estimate_s")
    if estimate is None:
        return None
    if run.status == RunStatus.RUNNING and run.started_at:
        return max(0.0, round(estimate - (timezone.now() - run.started_at).total_seconds(), 1))
    return float(estimate)


def run_summary(run: TrainingRun) -> dict:
    """A run as the project page and the API show it (progress, live loss, ETA, metrics)."""
    duration = None
    if run.started_at:
        end = run.finished_at or run.heartbeat_at or run.started_at
        duration = round((end - run.started_at).total_seconds(), 1)
    return {
        "eta_s": run_eta_s(run),
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "config": run.config,
        "epoch": run.epoch,
        "epochs": run.epochs,
        "step": run.step,
        "steps_per_epoch": run.steps_per_epoch,
        "loss": run.loss,
        "images_per_s": run.images_per_s,
        "device": run.device,
        "worker": run.worker,
        "attempts": run.attempts,
        "cancel_requested": run.cancel_requested,
        "error": run.error,
        "metrics": run.metrics,
        "loss_history": run.loss_history,
        "duration_s": duration,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "files": run_files(run_id=run.id),
    }


def run_file_paths(*, run_id: int) -> dict[str, Path]:
    """The files a run leaves for people, by the name its URL uses: TensorBoard event files and,
    when the run was profiled, the Chrome trace. Nothing else under the run's folder is served."""
    files = {}
    board = run_file(run_id, "tensorboard")
    if board.is_dir():
        for path in sorted(board.glob("events.out.tfevents.*")):
            files[f"tensorboard/{path.name}"] = path
    trace = run_file(run_id, "trace")
    if trace.is_file():
        files["trace.json"] = trace
    return files


def run_files(*, run_id: int) -> list[dict]:
    return [
        {
            "name": name,
            "url": reverse("run_file", args=[run_id, name]),
            "kind": "trace" if name == "trace.json" else "tensorboard",
        }
        for name in run_file_paths(run_id=run_id)
    ]


def project_runs(*, project_id: int, limit: int = 10) -> list[dict]:
    return [run_summary(run) for run in TrainingRun.objects.filter(project_id=project_id).order_by("-id")[:limit]]


def suggestion_page(
    *,
    project_id: int,
    label_id: int | None = None,
    min_probability: float | None = None,
    max_probability: float | None = None,
    predicted: bool | None = None,
    after: tuple | None = None,
    limit: int = 100,
) -> Page:
    """The current probe's suggestions, likeliest first, by keyset on (probability desc, id); two queries."""
    run_id = current_probe_run_id(project_id=project_id)
    rows = Suggestion.objects.filter(run_id=run_id)
    if label_id is not None:
        rows = rows.filter(label_id=label_id)
    if min_probability is not None:
        rows = rows.filter(probability__gte=min_probability)
    if max_probability is not None:
        rows = rows.filter(probability__lte=max_probability)
    if predicted is not None:
        rows = rows.filter(predicted=predicted)
    page = (
        keyset_page(
            rows.order_by("-probability", "id"),
            ("-probability", "id"),
            after=after,
            limit=limit,
            fields=("id", "image_id", "label_id", "probability", "predicted"),
        )
        if run_id is not None
        else Page([], None)
    )
    rows = page.rows
    decisions = {}
    if rows:
        for image_id, label, decision in SuggestionDecision.objects.filter(
            image_id__in={r["image_id"] for r in rows}
        ).values_list("image_id", "label_id", "decision"):
            decisions[(image_id, label)] = decision
    return Page(
        [
            {
                "id": r["id"],
                "image": r["image_id"],
                "label": r["label_id"],
                "probability": r["probability"],
                "predicted": r["predicted"],
                "decision": decisions.get((r["image_id"], r["label_id"])),
            }
            for r in rows
        ],
        page.next_key,
    )
