"""Model-assistance writes: start and cancel runs, refit after new labels, accept or reject suggestions.

Runs are queued with ``enqueue`` (on commit) and carry ids only; the work itself is in
``labeling.pipeline``, run by the Celery tasks in ``labeling.tasks``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotator.models import Image, ImageTag, LabelClass, Project, Source
from annotator.tasks import enqueue
from labeling.models import (ACTIVE_STATUSES, Decision, ProjectModelState, RunKind, RunStatus, Suggestion,
                             SuggestionDecision, TrainingRun)

# What a pretraining run may be configured with, and the bounds a request must stay within.
# time_budget_s (seconds, or null): train for that long instead of for ``epochs`` (which then caps it).
PRETRAIN_LIMITS = {"resolution": (16, 256), "epochs": (1, 2000), "batch_size": (8, 8192),
                   "lr_weights": (1e-5, 10.0), "warmup_epochs": (0, 100), "seed": (0, 2**31 - 1),
                   "crop_min": (0.05, 1.0)}
TIME_BUDGET_LIMITS = (10, 7 * 24 * 3600)
FEATURES = ("last", "multi", "multi_tta")  # how images become probe features (labeling.pipeline.feature_options)
# settings name -> config key: set in the environment, they override the device's preset.
_OVERRIDES = {"PRETRAIN_RESOLUTION": "resolution", "PRETRAIN_EPOCHS": "epochs", "PRETRAIN_BATCH_SIZE": "batch_size",
              "PRETRAIN_PROJECTOR": "projector", "PRETRAIN_CROP_MIN": "crop_min",
              "PRETRAIN_TIME_BUDGET_S": "time_budget_s"}


def pretrain_defaults(*, kind: str | None = None) -> dict:
    """The preset of the worker's device ("cpu" or "gpu"), with the settings' overrides."""
    from labeling.ml.presets import PRESETS
    from labeling.selectors import worker_device_kind

    preset = PRESETS[kind or worker_device_kind()]
    overrides = {key: getattr(settings, name) for name, key in _OVERRIDES.items()
                 if getattr(settings, name, None) is not None}
    return {**preset, "projector": list(preset["projector"]), **overrides}


class NeedsConfirmation(ValidationError):
    """The run would take long on this worker: it starts only when the request confirms it."""


def pretrain_start(*, project: Project, user: AbstractBaseUser | None = None, config: dict | None = None,
                   confirm: bool = False) -> TrainingRun:
    """Queue a pretraining. One estimated to take longer than PRETRAIN_CONFIRM_ABOVE_S on the worker's
    device is refused with the estimate unless ``confirm``: a click never starts hours of work unawares."""
    from labeling.selectors import pretrain_estimate

    config = config or {}
    merged = {**pretrain_defaults(), **config}
    if "epochs" in config and "time_budget_s" not in config:
        merged["time_budget_s"] = None  # epochs asked for: not cut short by the preset's time budget
    _check_config(merged)
    estimate = pretrain_estimate(project=project, config=merged)
    if estimate["needs_confirmation"] and not confirm:
        raise NeedsConfirmation(
            f"This pretraining would take about {estimate['text']} on the worker's {estimate['device'].upper()} "
            f"({estimate['images']} images, {merged['epochs']} epochs at {merged['resolution']} px). "
            "Confirm to start it anyway, or set a time budget (“time_budget_s”) or fewer epochs.")
    from labeling.tasks import gpu_pretrain

    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config=merged,
                                             epochs=merged["epochs"], created_by=user,
                                             metrics={"estimate_s": round(estimate["seconds"], 1)})
            enqueue(gpu_pretrain, run.id)
    except IntegrityError:
        raise ValidationError("A pretraining is already queued or running for this project; "
                              "cancel it first or wait for it to finish.") from None
    return run


def probe_start(*, project: Project, user: AbstractBaseUser | None = None) -> TrainingRun | None:
    """Queue a probe fit on the project's current backbone; None if one is already queued or running."""
    state = ProjectModelState.objects.filter(project=project).first()
    if state is None or state.pretrain_run_id is None:
        raise ValidationError("There is no pretrained backbone yet: run a pretraining first.")
    from labeling.tasks import fit_probe

    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(project=project, kind=RunKind.PROBE, created_by=user,
                                             backbone_run_id=state.pretrain_run_id, config={})
            ProjectModelState.objects.filter(project=project).update(submissions_since_fit=0)
            enqueue(fit_probe, run.id)
    except IntegrityError:
        return None  # one is queued or running; it will see these labels too, or trigger again
    return run


def submission_noted(*, project_id: int) -> TrainingRun | None:
    """Count a submission; at PROBE_REFIT_EVERY since the last fit, queue a refit. A burst of
    submissions queues one fit: while one is queued or running, no second one is created, and
    the submissions made meanwhile trigger the next."""
    if not ProjectModelState.objects.filter(project_id=project_id, pretrain_run__isnull=False).update(
            submissions_since_fit=F("submissions_since_fit") + 1):
        return None  # nothing pretrained yet: no probe to refit
    state = ProjectModelState.objects.select_related("project").get(project_id=project_id)
    if state.submissions_since_fit < settings.PROBE_REFIT_EVERY:
        return None
    return probe_start(project=state.project)


def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next step (within an epoch)."""
    now = timezone.now()
    if not TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED, finished_at=now, cancel_requested=True):
        TrainingRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(cancel_requested=True)
    run.refresh_from_db()
    return run


def run_retry(*, run: TrainingRun, user: AbstractBaseUser | None = None) -> TrainingRun:
    """Start a failed or cancelled run again as a new run: a pretraining with the same config, a
    probe fit on the project's current backbone."""
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise ValidationError("Only a failed or cancelled run can be retried.")
    if run.kind == RunKind.PRETRAIN:  # the same work as was asked for (and confirmed) before
        return pretrain_start(project=run.project, user=user, config=run.config, confirm=True)
    retried = probe_start(project=run.project, user=user)
    if retried is None:
        raise ValidationError("A probe fit is already queued or running; it will use the newest labels.")
    return retried


def suggestion_decide(*, image: Image, label: LabelClass, user: AbstractBaseUser, decision: str) -> None:
    """Accept (the label becomes a tag, its source recorded as the model) or reject a suggested label."""
    if decision not in Decision.values:
        raise ValidationError(f"Decide “accepted” or “rejected”, not “{decision}”.")
    if label.project_id != image.project_id:
        raise ValidationError("That label belongs to another project.")
    state = ProjectModelState.objects.filter(project_id=image.project_id).first()
    suggestion = Suggestion.objects.filter(run_id=state.probe_run_id if state else None, image=image,
                                           label=label).first()
    if suggestion is None:
        raise ValidationError(f"There is no current suggestion of “{label.name}” for this image.")
    with transaction.atomic():
        SuggestionDecision.objects.update_or_create(image=image, label=label, defaults={
            "run_id": suggestion.run_id, "probability": suggestion.probability, "decision": decision, "user": user})
        if decision == Decision.ACCEPTED:
            ImageTag.objects.get_or_create(image=image, label=label,
                                           defaults={"author": user, "source": Source.MODEL})
        # Either way the image's annotations changed: an open editor must re-read before saving.
        Image.objects.filter(pk=image.pk).update(version=F("version") + 1)


def _check_config(config: dict) -> None:
    unknown = set(config) - set(PRETRAIN_LIMITS) - {"projector", "small_stem", "profile", "time_budget_s", "features"}
    if unknown:
        raise ValidationError(f"Unknown pretraining setting(s): {', '.join(sorted(unknown))}.")
    for key, (low, high) in PRETRAIN_LIMITS.items():
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValidationError(f"“{key}” must be a number from {low} to {high}.")
    budget = config.get("time_budget_s")
    low, high = TIME_BUDGET_LIMITS
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                               or not low <= budget <= high):
        raise ValidationError(f"“time_budget_s” must be null (train for “epochs”) or a number of seconds "
                              f"from {low} to {high}.")
    if config.get("features", "last") not in FEATURES:
        raise ValidationError(f"“features” must be one of {', '.join(FEATURES)}.")
    if config["small_stem"] not in (None, True, False):
        raise ValidationError("“small_stem” must be true, false or null (automatic: small images get the small stem).")
    if not isinstance(config.get("profile", False), bool):
        raise ValidationError("“profile” must be true (record a profiler trace of a few steps) or false.")
    projector = config["projector"]
    if (not isinstance(projector, list) or not 1 <= len(projector) <= 4
            or not all(isinstance(d, int) and 16 <= d <= 16384 for d in projector)):
        raise ValidationError("“projector” must be a list of 1 to 4 layer widths from 16 to 16384.")
