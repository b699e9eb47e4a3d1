"""Model-assistance reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.db.models import Q
from django.urls import reverse

from annotator.models import Image
from labeling.models import ProjectModelState, Suggestion, SuggestionDecision, TrainingRun


def image_suggestions(*, image: Image) -> list[dict]:
    """The current probe's view of one image, likeliest first, with any decision already taken."""
    run_id = ProjectModelState.objects.filter(project_id=image.project_id).values_list("probe_run_id", flat=True).first()
    if run_id is None:
        return []
    decisions = dict(SuggestionDecision.objects.filter(image=image).values_list("label_id", "decision"))
    rows = (Suggestion.objects.filter(run_id=run_id, image=image).order_by("-probability")
            .values_list("label_id", "probability", "predicted"))
    return [{"label": label, "probability": p, "predicted": predicted, "decision": decisions.get(label)}
            for label, p, predicted in rows]


def suggestion_settings(*, project_id: int) -> dict:
    """The precision targets suggestions must prove, and each label's standing at the current fit."""
    from labeling.trust import DEFAULT_TARGET

    from annotator.models import LabelClass

    state = ProjectModelState.objects.filter(project_id=project_id).select_related("probe_run").first()
    fit = (state.probe_run.metrics.get("trust") or {}) if state and state.probe_run else {}
    by_label = {e.get("label_id"): e for e in fit.get("labels", [])}
    overrides = state.label_targets if state else {}
    target = state.precision_target if state else DEFAULT_TARGET
    return {"precision_target": target, "label_targets": dict(overrides),
            "labels": [{"label_id": label_id, "label": name, "target": overrides.get(str(label_id), target),
                        "override": str(label_id) in overrides,
                        **{k: by_label.get(label_id, {}).get(k) for k in (
                            "confident", "threshold", "precision_lower_bound", "near_chance")}}
                       for label_id, name in LabelClass.objects.filter(project_id=project_id)
                       .order_by("order", "id").values_list("id", "name")]}


def model_note(*, project_id: int) -> str | None:
    """The annotate page's one line when the model abstains: the newest finished fit's
    "still learning" message (a fit with nothing to suggest is not swapped in, yet it speaks)."""
    metrics = (TrainingRun.objects.filter(project_id=project_id, kind="probe", status="succeeded")
               .order_by("-id").values_list("metrics", flat=True).first())
    return ((metrics or {}).get("trust") or {}).get("still_learning")


def run_summary(run: TrainingRun) -> dict:
    """A run as the project page and the API show it (progress, live loss, metrics)."""
    duration = None
    if run.started_at:
        end = run.finished_at or run.heartbeat_at or run.started_at
        duration = round((end - run.started_at).total_seconds(), 1)
    return {
        "id": run.id, "kind": run.kind, "status": run.status, "config": run.config,
        "epoch": run.epoch, "epochs": run.epochs, "step": run.step, "steps_per_epoch": run.steps_per_epoch,
        "loss": run.loss, "images_per_s": run.images_per_s, "device": run.device, "worker": run.worker,
        "attempts": run.attempts, "cancel_requested": run.cancel_requested, "error": run.error,
        "metrics": run.metrics, "loss_history": run.loss_history, "duration_s": duration,
        "created_at": run.created_at.isoformat(), "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "files": run_files(run_id=run.id),
    }


def run_file_paths(*, run_id: int) -> dict[str, Path]:
    """The files a run leaves for people, by the name its URL uses: TensorBoard event files and,
    when the run was profiled, the Chrome trace. Nothing else under the run's folder is served."""
    from labeling.pipeline import RUN_FILES, run_dir

    base = run_dir(run_id)
    files = {}
    board = base / RUN_FILES["tensorboard"]
    if board.is_dir():
        for path in sorted(board.glob("events.out.tfevents.*")):
            files[f"tensorboard/{path.name}"] = path
    trace = base / RUN_FILES["trace"]
    if trace.is_file():
        files["trace.json"] = trace
    return files


def run_files(*, run_id: int) -> list[dict]:
    return [{"name": name, "url": reverse("run_file", args=[run_id, name]),
             "kind": "trace" if name == "trace.json" else "tensorboard"}
            for name in run_file_paths(run_id=run_id)]


def project_runs(*, project_id: int, limit: int = 10) -> list[dict]:
    return [run_summary(run) for run in TrainingRun.objects.filter(project_id=project_id).order_by("-id")[:limit]]


@dataclass(frozen=True)
class SuggestionPage:
    suggestions: list[dict]
    next_key: tuple | None  # (probability, id) of the last row, for the next page


def suggestion_page(*, project_id: int, label_id: int | None = None, min_probability: float | None = None,
                    max_probability: float | None = None, predicted: bool | None = None,
                    after: tuple | None = None, limit: int = 100) -> SuggestionPage:
    """The current probe's suggestions, likeliest first, by keyset on (probability desc, id); two queries."""
    run_id = ProjectModelState.objects.filter(project_id=project_id).values_list("probe_run_id", flat=True).first()
    rows = Suggestion.objects.filter(run_id=run_id)
    if label_id is not None:
        rows = rows.filter(label_id=label_id)
    if min_probability is not None:
        rows = rows.filter(probability__gte=min_probability)
    if max_probability is not None:
        rows = rows.filter(probability__lte=max_probability)
    if predicted is not None:
        rows = rows.filter(predicted=predicted)
    if after is not None:
        rows = rows.filter(Q(probability__lt=after[0]) | Q(probability=after[0], id__gt=after[1]))
    rows = list(rows.order_by("-probability", "id").values("id", "image_id", "label_id", "probability", "predicted")
                [: limit + 1] if run_id is not None else [])
    more = len(rows) > limit
    rows = rows[:limit]
    decisions = {}
    if rows:
        for image_id, label, decision in SuggestionDecision.objects.filter(
                image_id__in={r["image_id"] for r in rows}).values_list("image_id", "label_id", "decision"):
            decisions[(image_id, label)] = decision
    return SuggestionPage(
        [{"id": r["id"], "image": r["image_id"], "label": r["label_id"], "probability": r["probability"],
          "predicted": r["predicted"], "decision": decisions.get((r["image_id"], r["label_id"]))} for r in rows],
        (rows[-1]["probability"], rows[-1]["id"]) if more else None)
