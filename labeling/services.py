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

from annotator.access import LimitReached
from annotator.models import Image, ImageTag, LabelClass, Project, Source
from annotator.tasks import enqueue
from labeling.models import (ACTIVE_STATUSES, Decision, ProjectModelState, RunKind, RunStatus, Suggestion,
                             SuggestionDecision, TrainingRun)
from labeling.trust import decision_noted

# What a pretraining run may be configured with, and the bounds a request must stay within
# (docs/api.md lists them; the error for an unknown key lists the valid ones). Tight enough that one
# request cannot hold a GPU for days: at most 1,000 epochs, a batch of 4,096, and a projector of
# at most 3 layers of 8,192. time_budget_s (seconds, or null): train for that long instead of for
# ``epochs`` (which then caps it).
PRETRAIN_LIMITS = {"resolution": (16, 256), "epochs": (1, 1000), "batch_size": (8, 4096),
                   "lr_weights": (1e-5, 10.0), "warmup_epochs": (0, 100), "seed": (0, 2**31 - 1),
                   "crop_min": (0.05, 1.0)}
PROJECTOR_LAYERS = (1, 3)
PROJECTOR_WIDTH = (16, 8192)
TIME_BUDGET_LIMITS = (10, 7 * 24 * 3600)
FEATURES = ("last", "multi", "multi_tta")  # how images become probe features (labeling.pipeline.feature_options)
PRETRAIN_OTHER_KEYS = ("projector", "small_stem", "profile", "time_budget_s", "features")
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
    _check_active_runs(user=user, pretrain=True)
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
            enqueue(gpu_pretrain, run.id, row=run)
    except IntegrityError:
        raise ValidationError("A pretraining is already queued or running for this project; "
                              "cancel it first or wait for it to finish.") from None
    if not transaction.get_connection().in_atomic_block:
        run.refresh_from_db()  # sent by now: the answer shows a broker outage's message
    return run


def probe_start(*, project: Project, user: AbstractBaseUser | None = None) -> TrainingRun | None:
    """Queue a probe fit on the project's current backbone; None if one is already queued or running."""
    state = ProjectModelState.objects.filter(project=project).first()
    if state is None or state.pretrain_run_id is None:
        raise ValidationError("There is no pretrained backbone yet: run a pretraining first.")
    _check_active_runs(user=user, pretrain=False)
    from labeling.tasks import fit_probe

    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(project=project, kind=RunKind.PROBE, created_by=user,
                                             backbone_run_id=state.pretrain_run_id, config={})
            ProjectModelState.objects.filter(project=project).update(submissions_since_fit=0)
            enqueue(fit_probe, run.id, row=run)
    except IntegrityError:
        return None  # one is queued or running; it will see these labels too, or trigger again
    if not transaction.get_connection().in_atomic_block:
        run.refresh_from_db()  # sent by now: the answer shows a broker outage's message
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
        # A decision measures the precision of the shown suggestions: enough rejections withdraw
        # the label's confidence now (labeling/trust.py).
        decision_noted(run_id=suggestion.run_id, label_id=label.id)


def suggestion_settings_update(*, project: Project, precision_target: float | None = None,
                               label_targets: dict | None = None) -> ProjectModelState:
    """Set the precision a suggestion must prove before it is pre-ticked: the project's target and
    per-label overrides ({label id: target, or null to use the project's}). Thresholds are chosen
    at a fit, so a refit is queued when there is a backbone to fit on."""
    state, _ = ProjectModelState.objects.get_or_create(project=project)
    if precision_target is not None:
        state.precision_target = _target(precision_target, "precision_target")
    if label_targets is not None:
        if not isinstance(label_targets, dict):
            raise ValidationError("“label_targets” must be an object of label id: target (or null).")
        known = set(project.labels.values_list("id", flat=True))
        targets = dict(state.label_targets)
        for key, value in label_targets.items():
            if not str(key).isdigit() or int(key) not in known:
                raise ValidationError(f"“{key}” is not a label of this project.")
            if value is None:
                targets.pop(str(int(key)), None)
            else:
                targets[str(int(key))] = _target(value, f"label_targets.{key}")
        state.label_targets = targets
    state.save(update_fields=["precision_target", "label_targets"])
    if state.pretrain_run_id is not None:
        probe_start(project=project)
    return state


def _target(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= value <= 0.999:
        raise ValidationError(f"“{what}” must be a precision from 0.5 to 0.999 (e.g. 0.9 for 9 in 10 right).")
    return float(value)


def suggestion_undo(*, image: Image, label: LabelClass, user: AbstractBaseUser) -> None:
    """Take back a decision on a suggestion (the annotate page's Ctrl+Z after accept or reject): the
    decision row goes, so it no longer counts towards the suggestion's precision, and an accepted
    tag goes with it while it is still the model's (a person who re-set it keeps it)."""
    if label.project_id != image.project_id:
        raise ValidationError("That label belongs to another project.")
    with transaction.atomic():
        decided = SuggestionDecision.objects.filter(image=image, label=label).delete()[0]
        if not decided:
            raise ValidationError(f"Nobody has decided on the suggestion “{label.name}” for this image.")
        ImageTag.objects.filter(image=image, label=label, source=Source.MODEL).delete()
        Image.objects.filter(pk=image.pk).update(version=F("version") + 1)


def _check_active_runs(*, user: AbstractBaseUser | None, pretrain: bool) -> None:
    """Caps on queued and running runs: RUNS_MAX_ACTIVE_PER_USER for the runs one person started,
    PRETRAIN_MAX_ACTIVE for pretrainings on the whole server. Checked before the insert, so two
    requests at the same instant may both pass: a cap, not an exact count."""
    active = TrainingRun.objects.filter(status__in=ACTIVE_STATUSES)
    if user is not None and active.filter(created_by=user).count() >= settings.RUNS_MAX_ACTIVE_PER_USER:
        raise LimitReached(f"You already have {settings.RUNS_MAX_ACTIVE_PER_USER} runs queued or running, the limit "
                           "(RUNS_MAX_ACTIVE_PER_USER); wait for one to finish or cancel one.")
    if pretrain and active.filter(kind=RunKind.PRETRAIN).count() >= settings.PRETRAIN_MAX_ACTIVE:
        raise LimitReached(f"The server already has {settings.PRETRAIN_MAX_ACTIVE} pretrainings queued or running, "
                           "the limit (PRETRAIN_MAX_ACTIVE); try again when one has finished.")


def _check_config(config: dict) -> None:
    unknown = set(config) - set(PRETRAIN_LIMITS) - set(PRETRAIN_OTHER_KEYS)
    if unknown:
        valid = ", ".join([*PRETRAIN_LIMITS, *PRETRAIN_OTHER_KEYS])
        raise ValidationError(f"Unknown pretraining setting(s): {', '.join(sorted(unknown))}. "
                              f"The settings are: {valid} (see docs/api.md for their bounds).")
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
    (few, many), (narrow, wide) = PROJECTOR_LAYERS, PROJECTOR_WIDTH
    if (not isinstance(projector, list) or not few <= len(projector) <= many
            or not all(isinstance(d, int) and not isinstance(d, bool) and narrow <= d <= wide for d in projector)):
        raise ValidationError(f"“projector” must be a list of {few} to {many} layer widths from {narrow} to {wide}.")
