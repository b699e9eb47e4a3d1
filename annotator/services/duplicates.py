"""Near-duplicate groups, as the annotation queue sees them: which images it leaves out because
another image of their group stands for it. Model assistance finds the groups (labeling/curation.py)
and hands them over here; the queue reads Image.duplicate_of, a column of this app, with no join."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from annotator.models import Image, Project

BATCH = 1000  # rows per UPDATE


def images_duplicate_groups_set(*, project_id: int, groups: Iterable[tuple[int, int]]) -> int:
    """Replace the project's near-duplicate groups with ``groups``: (image id, group id) of every
    image in a group of two or more. The group's smallest image id (the group id itself when it is
    one of the project's images) is the one the queue serves; each other member gets
    ``duplicate_of`` = that id. Returns the number of images the queue now leaves out."""
    members: dict[int, list[int]] = {}
    for image_id, group in groups:
        members.setdefault(int(group), []).append(int(image_id))
    hidden = [(i, min(ids)) for ids in members.values() for i in ids if i != min(ids)]
    with transaction.atomic():
        Image.objects.filter(project_id=project_id, duplicate_of__isnull=False).update(duplicate_of=None)
        by_representative: dict[int, list[int]] = {}
        for image_id, representative in hidden:
            by_representative.setdefault(representative, []).append(image_id)
        rows = [Image(pk=i, duplicate_of=r) for r, ids in by_representative.items() for i in ids]
        for at in range(0, len(rows), BATCH):
            Image.objects.bulk_update(rows[at : at + BATCH], ["duplicate_of"])
    return len(rows)


def project_set_queue_duplicates(*, project: Project, one_per_group: bool) -> Project:
    """Whether the queue serves one image per near-duplicate group (the default) or every image."""
    project.queue_one_per_duplicate_group = bool(one_per_group)
    project.save(update_fields=["queue_one_per_duplicate_group"])
    return project
