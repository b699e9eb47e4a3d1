"""Accept or reject one label's suggestions on many images at once (a selection on a grid or the
embedding map), undoable as one step: the bulk sibling of labeling.services.suggestion_decide.

Like annotator.services.bulk_tags: one transaction, the images locked, each image's version checked
against the one the caller saw (an image edited since is reported as a conflict and left alone,
never overwritten), a new version for each image decided on. An accept adds the tag with source
"model" where the image lacks it (a tag a person set stays theirs); a reject adds nothing and takes
nothing away, as on the annotate page. The undo token holds each decision as it was before, the
tags the accept added and the versions the write left: an undo restores the images still at them.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction

from annotator.models import ImageTag, LabelClass, Project, Source
from annotator.services.bulk_tags import BULK_MAX_IMAGES, BulkReport, images_at_version, images_lock_seen
from annotator.services.bulk_tags import images_versions_bump, undo_token_read
from labeling.models import Decision, Suggestion, SuggestionDecision
from labeling.runs import current_probe_run_id
from labeling.trust import decision_noted

UNDO_SALT = "labeling.bulk_decisions.undo"


def suggestions_bulk_decide(
    *,
    project: Project,
    user: AbstractBaseUser,
    label: LabelClass,
    image_ids: list[int],
    decision: str,
    versions: dict[int, int] | None = None,
) -> BulkReport:
    """Accept or reject the current suggestion of ``label`` on each of ``image_ids`` (``versions``:
    {image id: version the caller saw}). Images without a current suggestion of the label are
    reported in ``no_suggestion`` and left as they are."""
    if decision not in Decision.values:
        raise ValidationError(f"Decide “accepted” or “rejected”, not “{decision}”.")
    if label.project_id != project.id:
        raise ValidationError("That label belongs to another project.")
    if len(image_ids) > BULK_MAX_IMAGES:
        raise ValidationError(f"At most {BULK_MAX_IMAGES:,} images at once; select fewer.")
    run_id = current_probe_run_id(project_id=project.id)
    report = BulkReport()
    with transaction.atomic():
        current, seen = images_lock_seen(project=project, image_ids=image_ids, versions=versions, report=report)
        probability = dict(
            Suggestion.objects.filter(run_id=run_id, label=label, image_id__in=seen).values_list(
                "image_id", "probability"
            )
        )
        report.no_suggestion = [i for i in seen if i not in probability]
        decided = [i for i in seen if i in probability]
        before = {
            row[0]: list(row[1:])
            for row in SuggestionDecision.objects.filter(label=label, image_id__in=decided).values_list(
                "image_id", "decision", "run_id", "probability", "user_id"
            )
        }
        report.changed = [i for i in decided if before.get(i, [None])[0] != decision]
        report.unchanged = [i for i in decided if i not in report.changed]
        _decisions_write(report.changed, label, run_id, probability, decision, user)
        added: list[int] = []
        if decision == Decision.ACCEPTED:
            tagged = set(
                ImageTag.objects.filter(label=label, image_id__in=report.changed).values_list("image_id", flat=True)
            )
            added = [i for i in report.changed if i not in tagged]
            ImageTag.objects.bulk_create(
                [ImageTag(image_id=i, label=label, author=user, source=Source.MODEL) for i in added], batch_size=2000
            )
        images_versions_bump(report.changed)
        report.versions = {i: current[i] + 1 for i in report.changed}
        if report.changed and run_id is not None:
            # Decisions measure the precision of the shown suggestions (labeling/trust.py).
            decision_noted(run_id=run_id, label_id=label.id)
    report.undo = signing.dumps(
        {
            "project": project.id,
            "label": label.id,
            "after": [[i, current[i] + 1] for i in report.changed],
            "before": [[i, *before[i]] for i in report.changed if i in before],
            "added": added,
        },
        salt=UNDO_SALT,
        compress=True,
    )
    return report


def suggestions_bulk_undo(*, project: Project, user: AbstractBaseUser, token: str) -> BulkReport:
    """Take back a bulk decision: on each image still at the version it left, the decision goes back
    to what it was (none, or the earlier one) and a tag the accept added goes while still the model's."""
    data, label = undo_token_read(project=project, token=token, salt=UNDO_SALT)
    report = BulkReport()
    after = {int(i): v for i, v in data["after"]}
    with transaction.atomic():
        ok = images_at_version(project=project, after=after, report=report)
        before = {int(row[0]): row[1:] for row in data["before"]}
        SuggestionDecision.objects.filter(label=label, image_id__in=[i for i in ok if i not in before]).delete()
        for image_id in (i for i in ok if i in before):
            decision, run_id, probability, user_id = before[image_id]
            SuggestionDecision.objects.filter(label=label, image_id=image_id).update(
                decision=decision, run_id=run_id, probability=probability, user_id=user_id
            )
        added = set(data["added"])
        ImageTag.objects.filter(label=label, source=Source.MODEL, image_id__in=[i for i in ok if i in added]).delete()
        images_versions_bump(ok)
        report.changed = ok
        report.versions = {i: after[i] + 1 for i in ok}
    return report


def _decisions_write(image_ids: list[int], label, run_id, probability: dict, decision: str, user) -> None:
    # update_or_create per image would be two queries each: one DELETE and one INSERT for the lot.
    SuggestionDecision.objects.filter(label=label, image_id__in=image_ids).delete()
    SuggestionDecision.objects.bulk_create(
        [
            SuggestionDecision(
                image_id=i, label=label, run_id=run_id, probability=probability[i], decision=decision, user=user
            )
            for i in image_ids
        ],
        batch_size=2000,
    )
