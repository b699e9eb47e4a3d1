"""Model-assistance writes: start and cancel runs, refit after new labels, accept or reject suggestions.

Runs are sent with ``labeling.tasks.run_enqueue`` (on commit) and carry ids only; the work itself
is in ``labeling.pretraining`` and ``labeling.suggesting``. A decision on a suggestion changes the
image's tags through annotator's versioned write (``image_tag_set``), never its tables directly.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, Value, When
from django.utils import timezone

from annotator.compiled import Compiled
from annotator.access import LimitReached
from labeling.auto_accept import auto_accept_settings_check
from annotator.services.annotations import BoxIn, image_box_add, image_box_remove, image_tag_set, image_version_bump
from annotator.models import Box, Image, ImageStatus, LabelClass, Project, Source
from annotator.selectors import project_status_counts
from labeling.config import detector_defaults, detector_rules, pretrain_config_check, pretrain_defaults
from labeling.models import ACTIVE_STATUSES, BoxDecision, BoxSuggestion, BoxSuggestionDecision, Decision
from labeling.models import ProjectModelState, RunKind, RunStatus, Suggestion, SuggestionDecision, TrainingRun
from labeling.paths import checkpoint_path
from labeling.runs import current_backbone_run_id, current_detector_run_id, current_probe_run_id, probe_create
from labeling.selectors import pretrain_estimate
from labeling.tasks import run_enqueue
from labeling.trust import box_decision_noted, decision_noted


class NeedsConfirmation(ValidationError):
    """The run would take long on this worker: it starts only when the request confirms it."""


PRETRAIN_ACTIVE = (
    "A pretraining is already queued or running for this project; cancel it first or wait for it to finish."
)


def pretrain_start(
    *, project: Project, user: AbstractBaseUser | None = None, config: dict | None = None, confirm: bool = False
) -> TrainingRun:
    """Queue a pretraining. One estimated to take longer than PRETRAIN_CONFIRM_ABOVE_S on the worker's
    device is refused with the estimate unless ``confirm``: a click never starts hours of work unawares."""
    config = config or {}
    merged = {**pretrain_defaults(images=project_status_counts(project_id=project.id)["total"]), **config}
    if "epochs" in config and "time_budget_s" not in config:
        merged["time_budget_s"] = None  # epochs asked for: not cut short by the preset's time budget
    pretrain_config_check(merged)
    _check_active_runs(user=user, pretrain=True)
    estimate = pretrain_estimate(project=project, config=merged)
    if estimate["needs_confirmation"] and not confirm:
        raise NeedsConfirmation(
            f"This pretraining would take about {estimate['text']} on the worker's {estimate['device'].upper()} "
            f"({estimate['images']} images, {merged['epochs']} epochs at {merged['resolution']} px). "
            "Confirm to start it anyway, or set a time budget (“time_budget_s”) or fewer epochs."
        )
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                project=project,
                kind=RunKind.PRETRAIN,
                config=merged,
                epochs=merged["epochs"],
                created_by=user,
                metrics={"estimate_s": round(estimate["seconds"], 1)},
            )
            run_enqueue(run)
    except IntegrityError:
        raise ValidationError(PRETRAIN_ACTIVE) from None
    if not transaction.get_connection().in_atomic_block:
        run.refresh_from_db()  # sent by now: the answer shows a broker outage's message
    return run


def probe_start(*, project: Project, user: AbstractBaseUser | None = None) -> TrainingRun | None:
    """Queue a probe fit on the project's current backbone; None if one is already queued or running."""
    backbone_run_id = current_backbone_run_id(project_id=project.id)
    if backbone_run_id is None:
        raise ValidationError("There is no pretrained backbone yet: run a pretraining first.")
    _check_active_runs(user=user, pretrain=False)
    with transaction.atomic():
        run = probe_create(project=project, backbone_run_id=backbone_run_id, user=user)
        if run is None:
            return None  # one is queued or running; it will see these labels too, or trigger again
        run_enqueue(run)
    if not transaction.get_connection().in_atomic_block:
        run.refresh_from_db()  # sent by now: the answer shows a broker outage's message
    return run


def submission_noted(*, project_id: int, image_id: int | None = None) -> TrainingRun | None:
    """Count a first submission, and whether the image has boxes, in one UPDATE; at
    PROBE_REFIT_EVERY submissions since the last probe fit queue a refit, and at DETECTOR_REFIT_EVERY
    images with boxes since the last detector fit (before the first one: that many in all) queue a
    detector fit. A burst of submissions queues one fit of each: while one is queued or running no
    second one is created, and the submissions made meanwhile trigger the next. Nothing before a
    pretraining has given the probe its features and the detector its backbone."""
    boxed = (
        Case(When(Exists(Box.objects.filter(image_id=image_id)), then=Value(1)), default=Value(0))
        if image_id is not None
        else Value(0)
    )
    if not ProjectModelState.objects.filter(project_id=project_id, pretrain_run__isnull=False).update(
        submissions_since_fit=F("submissions_since_fit") + 1, boxed_since_fit=F("boxed_since_fit") + boxed
    ):
        return None  # nothing pretrained yet: no probe to refit
    state = _STATE_WITH_PROJECT.first(project_id=project_id)
    if _detector_due(state):
        detector_start(project=state.project)
    if state.submissions_since_fit < settings.PROBE_REFIT_EVERY:
        return None
    return probe_start(project=state.project)


_STATE_WITH_PROJECT = Compiled(  # on every submission's path
    lambda project_id: ProjectModelState.objects.select_related("project").filter(project_id=project_id)[:1],
    {"project_id": "int"},
)


def _detector_due(state: ProjectModelState) -> bool:
    if state.boxed_since_fit >= settings.DETECTOR_REFIT_EVERY:
        return True
    if state.detector_run_id is not None or state.boxed_since_fit == 0:
        return False
    boxed = Image.objects.filter(project_id=state.project_id, status=ImageStatus.SUBMITTED, box_count__gt=0)
    return boxed.count() >= settings.DETECTOR_REFIT_EVERY


def detector_start(*, project: Project, user: AbstractBaseUser | None = None) -> TrainingRun | None:
    """Queue a detector fit on the submitted images with boxes, its backbone the project's current
    pretraining (random weights when there is none yet); None when one is already queued or running."""
    _check_active_runs(user=user, pretrain=False)
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                project=project,
                kind=RunKind.DETECTOR,
                created_by=user,
                backbone_run_id=current_backbone_run_id(project_id=project.id),
                config={"detector": detector_defaults(), "rules": detector_rules()},
            )
            ProjectModelState.objects.filter(project=project).update(boxed_since_fit=0)
            run_enqueue(run)
    except IntegrityError:
        return None  # one is queued or running; the boxes submitted meanwhile trigger the next
    if not transaction.get_connection().in_atomic_block:
        run.refresh_from_db()
    return run


def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next step (within an epoch)."""
    now = timezone.now()
    if not TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, finished_at=now, cancel_requested=True
    ):
        TrainingRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(cancel_requested=True)
    run.refresh_from_db()
    return run


def run_retry(*, run: TrainingRun, user: AbstractBaseUser | None = None) -> TrainingRun:
    """Start a failed or cancelled run again: a failed pretraining that saved a checkpoint goes on
    from it, in the same run (``_pretrain_resume``); any other as a new run: a pretraining with the
    same config, a probe fit on the project's current backbone."""
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise ValidationError("Only a failed or cancelled run can be retried.")
    if run.kind == RunKind.PRETRAIN and run.status == RunStatus.FAILED and checkpoint_path(run.id).exists():
        return _pretrain_resume(run=run, user=user)
    if run.kind == RunKind.PRETRAIN:  # the same work as was asked for (and confirmed) before
        return pretrain_start(project=run.project, user=user, config=run.config, confirm=True)
    if run.kind == RunKind.DETECTOR:
        detector = detector_start(project=run.project, user=user)
        if detector is None:
            raise ValidationError("A detector fit is already queued or running; it will use the newest boxes.")
        return detector
    retried = probe_start(project=run.project, user=user)
    if retried is None:
        raise ValidationError("A probe fit is already queued or running; it will use the newest labels.")
    return retried


def _pretrain_resume(*, run: TrainingRun, user: AbstractBaseUser | None) -> TrainingRun:
    """Queue a failed pretraining again from its last checkpoint: what failed it (a full disk, a
    worker that died more often than the sweep retries) cost the steps since that checkpoint, not
    hours of training. Claimed, it resumes like a paused run; its checkpoint holds its config."""
    _check_active_runs(user=user, pretrain=True)
    try:
        with transaction.atomic():
            if not TrainingRun.objects.filter(pk=run.pk, status=RunStatus.FAILED).update(
                status=RunStatus.QUEUED,
                worker="",
                attempts=0,
                error="",
                finished_at=None,
                heartbeat_at=None,
                sent_at=None,
                eta_at=None,
                cancel_requested=False,
            ):
                raise ValidationError("This run is no longer failed; reload the page.")
            run.refresh_from_db()
            run_enqueue(run)
    except IntegrityError:
        raise ValidationError(PRETRAIN_ACTIVE) from None
    if not transaction.get_connection().in_atomic_block:
        run.refresh_from_db()
    return run


def suggestion_decide(*, image: Image, label: LabelClass, user: AbstractBaseUser, decision: str) -> None:
    """Accept (the label becomes a tag, its source recorded as the model) or reject a suggested label."""
    if decision not in Decision.values:
        raise ValidationError(f"Decide “accepted” or “rejected”, not “{decision}”.")
    if label.project_id != image.project_id:
        raise ValidationError("That label belongs to another project.")
    suggestion = Suggestion.objects.filter(
        run_id=current_probe_run_id(project_id=image.project_id), image=image, label=label
    ).first()
    if suggestion is None:
        raise ValidationError(f"There is no current suggestion of “{label.name}” for this image.")
    with transaction.atomic():
        SuggestionDecision.objects.update_or_create(
            image=image,
            label=label,
            defaults={
                "run_id": suggestion.run_id,
                "probability": suggestion.probability,
                "decision": decision,
                "user": user,
            },
        )
        # Either way the image's annotations changed (a tag, or the suggestions shown with them):
        # the image's version moves, so an open editor re-reads before saving.
        image_tag_set(
            image=image,
            label=label,
            user=user,
            source=Source.MODEL,
            present=True if decision == Decision.ACCEPTED else None,
        )
        # A decision measures the precision of the shown suggestions: enough rejections withdraw
        # the label's confidence now (labeling/trust.py). An acceptance only raises the bound.
        if decision == Decision.REJECTED:
            decision_noted(run_id=suggestion.run_id, label_id=label.id, score=suggestion.probability)


def suggestion_settings_update(
    *,
    project: Project,
    precision_target: float | None = None,
    label_targets: dict | None = None,
    auto_accept: bool | None = None,
    auto_accept_target: float | None = None,
    audit_rate: float | None = None,
) -> ProjectModelState:
    """Set the precision a suggestion must prove before it is pre-ticked: the project's target and
    per-label overrides ({label id: target, or null to use the project's}); and auto-accept (on or
    off, its stricter target, the share audited). Thresholds are chosen at a fit, so a refit is
    queued when there is a backbone to fit on."""
    auto_accept_settings_check(auto_accept=auto_accept, auto_accept_target=auto_accept_target, audit_rate=audit_rate)
    state, _ = ProjectModelState.objects.get_or_create(project=project)
    for name, value in (
        ("auto_accept", auto_accept),
        ("auto_accept_target", auto_accept_target),
        ("audit_rate", audit_rate),
    ):
        if value is not None:
            setattr(state, name, value if isinstance(value, bool) else float(value))
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
    state.save(update_fields=["precision_target", "label_targets", "auto_accept", "auto_accept_target", "audit_rate"])
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
        image_tag_set(image=image, label=label, user=user, source=Source.MODEL, present=False)


# A box accepted with its corners moved by less than this (image pixels) is accepted as suggested.
ADJUSTED_FROM_PX = 0.5


def box_suggestion_decide(
    *,
    image: Image,
    suggestion_id: int,
    user: AbstractBaseUser,
    decision: str,
    geometry: tuple[float, float, float, float] | None = None,
) -> BoxSuggestionDecision:
    """Accept a suggested box (it becomes a Box with source "model"; with ``geometry`` that differs,
    "model_adjusted" at that geometry) or reject it. Each shown suggestion is decided once; the
    decision keeps what was shown, since the suggestion's row goes with its run."""
    if decision not in (BoxDecision.ACCEPTED, BoxDecision.REJECTED):
        raise ValidationError(f"Decide “accepted” or “rejected”, not “{decision}”.")
    suggestion = BoxSuggestion.objects.filter(
        pk=suggestion_id, image=image, run_id=current_detector_run_id(project_id=image.project_id)
    ).first()
    if suggestion is None:
        raise ValidationError("There is no such current box suggestion for this image.")
    shown = (suggestion.x, suggestion.y, suggestion.w, suggestion.h)
    with transaction.atomic():
        if BoxSuggestionDecision.objects.select_for_update().filter(suggestion_id=suggestion.id).exists():
            raise ValidationError("This box suggestion was decided already; undo that decision first.")
        box = None
        if decision == BoxDecision.ACCEPTED:
            adjusted = geometry is not None and max(abs(a - b) for a, b in zip(geometry, shown)) >= ADJUSTED_FROM_PX
            box = image_box_add(
                image=image,
                box=BoxIn(suggestion.label_id, *(geometry if adjusted else shown)),
                user=user,
                source=Source.MODEL_ADJUSTED if adjusted else Source.MODEL,
            )
            decision = BoxDecision.ADJUSTED if adjusted else BoxDecision.ACCEPTED
        else:
            image_version_bump(image=image)
        try:
            with transaction.atomic():  # a savepoint: a concurrent decision on it wins the unique constraint
                decided = BoxSuggestionDecision.objects.create(
                    run_id=suggestion.run_id,
                    suggestion_id=suggestion.id,
                    image=image,
                    label_id=suggestion.label_id,
                    x=suggestion.x,
                    y=suggestion.y,
                    w=suggestion.w,
                    h=suggestion.h,
                    score=suggestion.score,
                    decision=decision,
                    box_id=box.id if box is not None else None,
                    user=user,
                )
        except IntegrityError:
            raise ValidationError("This box suggestion was decided already; undo that decision first.") from None
        # As for tags: enough rejections withdraw the label's confident boxes now (labeling/trust.py);
        # an accepted or adjusted box only raises the bounds, so it has nothing to check.
        if decision == BoxDecision.REJECTED:
            box_decision_noted(run_id=suggestion.run_id, label_id=suggestion.label_id, score=suggestion.score)
        return decided


def box_suggestion_undo(*, image: Image, suggestion_id: int) -> None:
    """Take back a decision on a box suggestion: the decision goes (it no longer measures the
    suggestions' precision), and the box an accept added while it is still the model's."""
    with transaction.atomic():
        decided = BoxSuggestionDecision.objects.select_for_update().filter(suggestion_id=suggestion_id, image=image)
        row = decided.first()
        if row is None:
            raise ValidationError("Nobody has decided on this box suggestion.")
        row.delete()
        removed = row.box_id is not None and image_box_remove(
            image=image, box_id=row.box_id, sources=(Source.MODEL, Source.MODEL_ADJUSTED)
        )
        if not removed:
            image_version_bump(image=image)


def _check_active_runs(*, user: AbstractBaseUser | None, pretrain: bool) -> None:
    """Caps on queued and running runs: RUNS_MAX_ACTIVE_PER_USER for the runs one person started,
    PRETRAIN_MAX_ACTIVE for pretrainings on the whole server. Checked before the insert, so two
    requests at the same instant may both pass: a cap, not an exact count."""
    active = TrainingRun.objects.filter(status__in=ACTIVE_STATUSES)
    if user is not None and active.filter(created_by=user).count() >= settings.RUNS_MAX_ACTIVE_PER_USER:
        raise LimitReached(
            f"You already have {settings.RUNS_MAX_ACTIVE_PER_USER} runs queued or running, the limit "
            "(RUNS_MAX_ACTIVE_PER_USER); wait for one to finish or cancel one."
        )
    if pretrain and active.filter(kind=RunKind.PRETRAIN).count() >= settings.PRETRAIN_MAX_ACTIVE:
        raise LimitReached(
            f"The server already has {settings.PRETRAIN_MAX_ACTIVE} pretrainings queued or running, "
            "the limit (PRETRAIN_MAX_ACTIVE); try again when one has finished."
        )
