"""Auto-accept (off by default, per project): after a fit's suggestions are swapped in, those at or
above each label's auto threshold (labeling/trust.py: the confident rule at the stricter
``auto_accept_target``) become tags of source ``model_auto`` on unlabeled images nobody holds, and a
random ``audit_rate`` of them waits in the audit queue. A reviewer confirms or rejects each sampled
tag (a rejection removes it); the audits are real precision measurements of what the model did by
itself, shown beside the fit's estimate on the dashboard, and audits that fall short of the target
withdraw the label from auto-accept at once (and at every later fit, from the counts).

Never touched: images someone submitted, skipped or holds; a tag a person rejected as a suggestion
of this image; a tag the image already has.
"""

from __future__ import annotations

import random

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotator.models import ImageStatus, Source
from annotator.services.annotations import image_tag_set, tags_auto_add
from labeling.models import AuditResult, AutoTag, Decision, ProjectModelState, Suggestion, SuggestionDecision
from labeling.models import TrainingRun
from labeling.trust import tag_trust_of, trust_entry_update, wilson_upper


def auto_accept_apply(*, run_id: int) -> int:
    """Turn ``run_id``'s suggestions above their label's auto threshold into tags; -> tags written.
    Runs after the swap (labeling.suggesting.finalise) when the project has auto-accept on."""
    run = TrainingRun.objects.select_related("project").get(pk=run_id)
    state = ProjectModelState.objects.filter(project_id=run.project_id).first()
    if state is None or not state.auto_accept:
        return 0
    rate = state.audit_rate
    draw = random.Random(run_id)  # the same sample if the step is repeated
    written = 0
    for entry in (run.metrics.get("trust") or {}).get("labels", []):
        threshold = entry.get("auto_threshold")
        if threshold is None or entry.get("auto_withdrawn"):
            continue
        label_id = entry["label_id"]
        rejected = SuggestionDecision.objects.filter(label_id=label_id, decision=Decision.REJECTED).values("image_id")
        candidates = dict(
            Suggestion.objects.filter(
                run_id=run_id, label_id=label_id, probability__gte=threshold, image__status=ImageStatus.UNLABELED
            )
            .exclude(image_id__in=rejected)
            .values_list("image_id", "probability")
        )
        pairs = tags_auto_add(project_id=run.project_id, pairs=[(i, label_id) for i in candidates])
        AutoTag.objects.bulk_create(
            [
                AutoTag(
                    run_id=run_id,
                    image_id=i,
                    label_id=label_id,
                    probability=candidates[i],
                    audit_result=AuditResult.PENDING if draw.random() < rate else "",
                )
                for i, _ in pairs
            ],
            batch_size=5000,
            ignore_conflicts=True,
        )
        written += len(pairs)
    return written


def audit_next(*, project_id: int, exclude: list[int] | None = None) -> AutoTag | None:
    """The oldest auto-accepted tag of the sample still waiting for an audit (the tag still there)."""
    return (
        AutoTag.objects.filter(image__project_id=project_id, audit_result=AuditResult.PENDING)
        .exclude(pk__in=exclude or [])
        .select_related("image", "label")
        .order_by("id")
        .first()
    )


def audit_pending_count(*, project_id: int) -> int:
    return AutoTag.objects.filter(image__project_id=project_id, audit_result=AuditResult.PENDING).count()


def audit_decide(*, auto_tag: AutoTag, user: AbstractBaseUser, verdict: str) -> AutoTag:
    """A reviewer's audit of one sampled auto-accepted tag: ``confirmed`` keeps it, ``rejected``
    removes it from the image (while it is still the model's). Audits that bring the label's
    95 % upper bound of precision under its auto target stop auto-accept for that label now."""
    if verdict not in (AuditResult.CONFIRMED, AuditResult.REJECTED):
        raise ValidationError(f"Audit “confirmed” or “rejected”, not “{verdict}”.")
    with transaction.atomic():
        if not AutoTag.objects.filter(pk=auto_tag.pk, audit_result=AuditResult.PENDING).update(
            audit_result=verdict, audited_by=user, audited_at=timezone.now()
        ):
            raise ValidationError("This auto-accepted tag was audited already.")
        if verdict == AuditResult.REJECTED:
            image_tag_set(
                image=auto_tag.image, label=auto_tag.label, user=user, source=Source.MODEL_AUTO, present=False
            )
        _withdraw_if_short(auto_tag)
    auto_tag.refresh_from_db()
    return auto_tag


def _withdraw_if_short(auto_tag: AutoTag) -> None:
    state = ProjectModelState.objects.filter(project_id=auto_tag.image.project_id).select_related("probe_run").first()
    run = state.probe_run if state else None
    if run is None:
        return
    counts = AutoTag.objects.filter(
        label_id=auto_tag.label_id, audit_result__in=[AuditResult.CONFIRMED, AuditResult.REJECTED]
    ).aggregate(confirmed=Count("id", filter=Q(audit_result=AuditResult.CONFIRMED)), audited=Count("id"))
    for entry in (run.metrics.get("trust") or {}).get("labels", []):
        if entry.get("label_id") != auto_tag.label_id or entry.get("auto_threshold") is None:
            continue
        if wilson_upper(counts["confirmed"], counts["audited"]) < entry.get("auto_target", 1.0):
            trust_entry_update(
                run_id=run.pk,
                label_id=auto_tag.label_id,
                trust_of=tag_trust_of,
                change=lambda e: e.update(
                    auto_threshold=None, auto_withdrawn="the audits of its auto-accepted tags fall short"
                ),
            )


def auto_accept_summary(*, project_id: int) -> dict[int, dict]:
    """Per label: auto-accepted tags, audited, confirmed, pending; one grouped query."""
    rows = (
        AutoTag.objects.filter(image__project_id=project_id)
        .values("label_id")
        .annotate(
            auto=Count("id"),
            audited=Count("id", filter=Q(audit_result__in=[AuditResult.CONFIRMED, AuditResult.REJECTED])),
            confirmed=Count("id", filter=Q(audit_result=AuditResult.CONFIRMED)),
            pending=Count("id", filter=Q(audit_result=AuditResult.PENDING)),
        )
    )
    return {r.pop("label_id"): r for r in rows}


def auto_accept_settings_check(*, auto_accept, auto_accept_target, audit_rate) -> None:
    if auto_accept is not None and not isinstance(auto_accept, bool):
        raise ValidationError("“auto_accept” must be true or false.")
    if auto_accept_target is not None and (
        isinstance(auto_accept_target, bool)
        or not isinstance(auto_accept_target, (int, float))
        or not 0.5 <= auto_accept_target <= 0.999
    ):
        raise ValidationError("“auto_accept_target” must be a precision from 0.5 to 0.999 (e.g. 0.97).")
    if audit_rate is not None and (
        isinstance(audit_rate, bool) or not isinstance(audit_rate, (int, float)) or not 0 <= audit_rate <= 1
    ):
        raise ValidationError("“audit_rate” must be a share from 0 to 1 (e.g. 0.1 to audit one in ten).")
