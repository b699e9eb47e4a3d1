"""One tag added to or removed from many images at once (a lasso on the embedding map), as one
versioned write per image, in one transaction, and undone as one step.

Each image's version is checked against the one the caller saw (``versions``): an image someone
edited since is left alone and reported (the API answers 409 for it), never overwritten. Only images
whose tags change get a new version, so an editor open on an untouched image keeps working. The
undo is a signed token holding what changed (the image, its version after the write, and the source
and author of a removed tag): an undo reverts the images still at that version and reports the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from annotator.models import Box, Image, ImageTag, LabelClass, Project, Source

UNDO_SALT = "annotator.bulk_tags.undo"
UNDO_MAX_AGE_S = 24 * 3600
BULK_MAX_IMAGES = 10_000


@dataclass
class BulkReport:
    changed: list[int] = field(default_factory=list)  # images whose tags changed (new version)
    unchanged: list[int] = field(default_factory=list)  # already as asked
    conflicts: list[dict] = field(default_factory=list)  # {id, version}: edited since the caller saw it
    missing: list[int] = field(default_factory=list)  # not images of the project
    still_present: list[int] = field(default_factory=list)  # removed the tag, but a box of the label remains
    no_suggestion: list[int] = field(default_factory=list)  # a decision on suggestions: none for the label
    versions: dict[int, int] = field(default_factory=dict)  # the changed images' versions now
    undo: str | None = None

    def as_dict(self) -> dict:
        return {
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "conflicts": self.conflicts,
            "missing": self.missing,
            "still_present": self.still_present,
            "no_suggestion": self.no_suggestion,
            "versions": {str(i): v for i, v in self.versions.items()},
            "undo": self.undo,
        }


def tags_bulk_set(
    *,
    project: Project,
    user: AbstractBaseUser,
    label: LabelClass,
    image_ids: list[int],
    present: bool,
    versions: dict[int, int] | None = None,
) -> BulkReport:
    """Add (``present``) or remove the tag ``label`` on ``image_ids``; ``versions``: {image id:
    version the caller saw} (images it does not name are taken as seen now)."""
    if label.project_id != project.id:
        raise ValidationError("That label belongs to another project.")
    if len(image_ids) > BULK_MAX_IMAGES:
        raise ValidationError(f"At most {BULK_MAX_IMAGES:,} images at once; select fewer.")
    report = BulkReport()
    with transaction.atomic():
        current, seen = images_lock_seen(project=project, image_ids=image_ids, versions=versions, report=report)
        tagged = dict(ImageTag.objects.filter(image_id__in=seen, label=label).values_list("image_id", "source"))
        if present:
            report.changed = [i for i in seen if i not in tagged]
            report.unchanged = [i for i in seen if i in tagged]
            ImageTag.objects.bulk_create(
                [ImageTag(image_id=i, label=label, author=user, source=Source.HUMAN_BULK) for i in report.changed],
                batch_size=2000,
            )
            removed: list[list] = []
        else:
            report.changed = [i for i in seen if i in tagged]
            report.unchanged = [i for i in seen if i not in tagged]
            removed = _remove(report.changed, label)
            report.still_present = sorted(
                set(Box.objects.filter(image_id__in=report.changed, label=label).values_list("image_id", flat=True))
            )
        _bump(report.changed)
        after = report.versions = {i: current[i] + 1 for i in report.changed}
    report.undo = _undo_token(project, label, present, after, removed)
    return report


def tags_bulk_undo(*, project: Project, user: AbstractBaseUser, token: str) -> BulkReport:
    """Take back a bulk write: on each image still at the version the write left, the tag goes back
    as it was (removed again, or restored with its source and author); the others are conflicts."""
    data, label = undo_token_read(project=project, token=token, salt=UNDO_SALT)
    after = {int(i): v for i, v in data["after"]}
    report = BulkReport()
    with transaction.atomic():
        ok = images_at_version(project=project, after=after, report=report)
        if data["present"]:  # the write added the tag: remove it again
            _remove(ok, label)
        else:
            restore = {int(i): (source, author) for i, source, author in data["removed"]}
            ImageTag.objects.bulk_create(
                [ImageTag(image_id=i, label=label, source=restore[i][0], author_id=restore[i][1]) for i in ok],
                batch_size=2000,
            )
            _human_tags_moved([i for i in ok if restore[i][0] == Source.HUMAN], +1)
        _bump(ok)
        report.changed = ok
        report.versions = {i: after[i] + 1 for i in ok}
    return report


def images_lock_seen(
    *, project: Project, image_ids: list[int], versions: dict[int, int] | None, report: BulkReport
) -> tuple[dict[int, int], list[int]]:
    """Inside the caller's transaction: lock the project's ``image_ids`` and sort them into those at
    the version the caller saw (``versions``; an image it does not name counts as seen now) and
    ``report``'s conflicts and missing. -> ({image id: version now}, [ids as seen, ascending])."""
    versions = versions or {}
    current = dict(
        Image.objects.select_for_update().filter(project=project, pk__in=set(image_ids)).values_list("id", "version")
    )
    report.missing = sorted(set(image_ids) - set(current))
    seen = []
    for image_id, version in sorted(current.items()):
        if versions.get(image_id, version) != version:
            report.conflicts.append({"id": image_id, "version": version})
        else:
            seen.append(image_id)
    return current, seen


def images_at_version(*, project: Project, after: dict[int, int], report: BulkReport) -> list[int]:
    """Inside the caller's transaction, for an undo: lock the images of ``after`` ({id: the version
    the write left}) and return those still at it; the others go to ``report``'s conflicts."""
    current = dict(
        Image.objects.select_for_update().filter(project=project, pk__in=list(after)).values_list("id", "version")
    )
    report.missing = sorted(set(after) - set(current))
    ok = []
    for image_id, version in sorted(current.items()):
        if version != after[image_id]:
            report.conflicts.append({"id": image_id, "version": version})
        else:
            ok.append(image_id)
    return ok


def images_versions_bump(image_ids: list[int]) -> None:
    """Every image's version up by one, in a few UPDATEs (the rows are locked by the caller)."""
    _bump(image_ids)


def _remove(image_ids: list[int], label: LabelClass) -> list[list]:
    """Delete the label's tag on these images; returns [image id, source, author id] of each."""
    rows = [
        list(r)
        for r in ImageTag.objects.filter(image_id__in=image_ids, label=label).values_list(
            "image_id", "source", "author_id"
        )
    ]
    ImageTag.objects.filter(image_id__in=image_ids, label=label).delete()
    _human_tags_moved([i for i, source, _ in rows if source == Source.HUMAN], -1)
    return rows


def _human_tags_moved(image_ids: list[int], delta: int) -> None:
    # Image.human_tag_count is kept by every annotation write (the dashboard's per-annotator charts).
    if image_ids:
        # Greatest: a counter already off (a row written around the services) is not a reason to fail.
        Image.objects.filter(pk__in=image_ids).update(human_tag_count=Greatest(F("human_tag_count") + delta, 0))


def _bump(image_ids: list[int]) -> None:
    # The rows are locked (FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE transactions serialise
    # writers), so the versions read above are still theirs: one UPDATE moves them all.
    for start in range(0, len(image_ids), 5000):
        Image.objects.filter(pk__in=image_ids[start : start + 5000]).update(version=F("version") + 1)


def _undo_token(project: Project, label: LabelClass, present: bool, after: dict[int, int], removed: list[list]) -> str:
    return signing.dumps(
        {
            "project": project.id,
            "label": label.id,
            "present": present,
            "after": [[i, v] for i, v in after.items()],
            "removed": removed,
        },
        salt=UNDO_SALT,
        compress=True,
    )


def undo_token_read(*, project: Project, token: str, salt: str) -> tuple[dict, LabelClass]:
    """(what a bulk write signed into its undo token, the label it wrote) after checking the token is
    this server's, under a day old and of ``project``; ValidationError saying which it is not. Bulk tags
    and labeling's bulk decisions each sign with their own ``salt``."""
    try:
        data = signing.loads(token, salt=salt, max_age=UNDO_MAX_AGE_S)
    except signing.BadSignature:
        raise ValidationError("That undo is not one this server gave out, or it is over a day old.") from None
    if data["project"] != project.id:
        raise ValidationError("That undo belongs to another project.")
    return data, LabelClass.objects.get(pk=data["label"], project=project)
