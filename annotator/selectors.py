"""Reads. Aggregates run in SQL and lists page by keyset, so that a page costs the same at
ten thousand images as at a million."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, FloatField, JSONField, Q, QuerySet, Sum, Value

from annotator.agreement import box_f1, tag_jaccard
from annotator.compiled import Compiled
from annotator.models import AnnotationSnapshot, Box, Image, ImageTag, ImageStatus, LabelBoxCount, Membership, Project
from annotator.models import ProjectStatusCount, Review, ReviewStatus
from annotator.orders import images_ordered
from annotator.paging import Page, keyset_page


def projects_for_user(*, user: AbstractBaseUser) -> QuerySet[Project]:
    projects = Project.objects.all() if user.is_superuser else Project.objects.filter(memberships__user=user)
    return projects.order_by("-id")


def project_status_counts(*, project_id: int) -> dict[str, int]:
    """Images per status (every status present, zero when none) and ``total``, from the counters the
    services maintain: a few rows whatever the project's size (a grouped COUNT grew with it)."""
    counts = {status: 0 for status in ImageStatus.values}
    counts.update(
        ProjectStatusCount.objects.filter(project_id=project_id)
        .values_list("status")
        .annotate(n=Sum("count"))
        .order_by()
    )
    counts["total"] = sum(counts.values())
    return counts


def label_box_counts(*, project_id: int) -> dict[int, int]:
    """{label id: boxes} for the labels that have had boxes, from the counters the services maintain
    (grouping the box table took 50-110 ms at 300,000 boxes and grew with it)."""
    return dict(
        LabelBoxCount.objects.filter(label__project_id=project_id)
        .values_list("label_id")
        .annotate(n=Sum("count"))
        .order_by()
    )


def recent_images(*, project_id: int, limit: int = 12) -> list[Image]:
    return list(
        Image.objects.filter(project_id=project_id)
        .only("id", "project_id", "original_name", "status", "thumbnail", "version")
        .order_by("-id")[:limit]
    )


@dataclass(frozen=True)
class ImagePage:
    images: list[Image]
    next_after: int | None  # pass as ``after`` for the next page; None on the last page
    prev_before: int | None  # pass as ``before`` for the previous page; None on the first page


def image_page(
    *, project_id: int, status: str | None = None, after: int | None = None, before: int | None = None, limit: int = 60
) -> ImagePage:
    """One page of a project's images in id order, by keyset (``id > after`` or ``id < before``)."""
    images = Image.objects.filter(project_id=project_id).only(
        "id", "project_id", "original_name", "width", "height", "status", "thumbnail", "version"
    )
    if status:
        images = images.filter(status=status)
    if before is not None:
        rows = list(images.filter(id__lt=before).order_by("-id")[: limit + 1])
        has_more_before = len(rows) > limit
        rows = rows[:limit][::-1]
        return ImagePage(
            rows, next_after=rows[-1].id if rows else None, prev_before=rows[0].id if rows and has_more_before else None
        )
    if after is not None:
        images = images.filter(id__gt=after)
    rows = list(images.order_by("id")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return ImagePage(
        rows,
        next_after=rows[-1].id if has_more else None,
        prev_before=rows[0].id if rows and after is not None else None,
    )


def annotation_state(*, image: Image, written: tuple[list, list] | None = None) -> dict:
    """The annotation domain's part of what the annotate page needs of one image (docs/annotate-api.md):
    the image, its boxes and tags, the review note. twinlabel.web.compose adds the model's part.
    ``written``: the (Box, ImageTag) rows a save just wrote, so they are not read back."""
    from django.urls import reverse

    boxes, tags = _written_state(*written) if written is not None else _boxes_and_tags(image)
    return {
        "image": {
            "id": image.id,
            "name": image.original_name,
            "url": reverse("image_file", args=[image.id]),
            "width": image.width,
            "height": image.height,
            "status": image.status,
            "version": image.version,
        },
        "boxes": boxes,
        "tags": tags,
        "review": review_note(image=image),
    }


def _boxes_and_tags(image: Image) -> tuple[list[dict], list[dict]]:
    """The image's boxes and its tags, each in id order, in one query (a UNION: this is on every hot
    request's path). A tag row has x = -1, which no box has (box_inside_image_origin)."""
    rows = _BOXES_AND_TAGS.rows(image_id=image.pk)
    boxes, tag_list = [], []
    for i, label, x, y, w, h, source, attributes in rows:
        if x < 0:
            tag_list.append({"label": label, "source": source})
        else:
            boxes.append(
                {"id": i, "label": label, "x": x, "y": y, "w": w, "h": h, "source": source, "attributes": attributes}
            )
    return boxes, tag_list


def _boxes_and_tags_query(image_id: int):
    no = Value(-1.0, output_field=FloatField())
    fields = ("id", "label_id", "x", "y", "w", "h", "source", "attributes")
    tags = ImageTag.objects.filter(image_id=image_id).order_by()
    tags = tags.annotate(x_=no, y_=no, w_=no, h_=no, attributes_=Value(None, output_field=JSONField()))
    return (
        Box.objects.filter(image_id=image_id)
        .order_by()
        .values_list(*fields)
        .union(tags.values_list("id", "label_id", "x_", "y_", "w_", "h_", "source", "attributes_"), all=True)
        .order_by("id")
    )


_BOXES_AND_TAGS = Compiled(_boxes_and_tags_query, {"image_id": "int"})


def _written_state(boxes: list, tags: list) -> tuple[list[dict], list[dict]]:
    """``_boxes_and_tags``' answer from the rows a save created (bulk_create gave them their ids, in
    the order written: id order, as the read would give)."""
    return (
        [
            {"id": b.id, "label": b.label_id, "x": b.x, "y": b.y, "w": b.w, "h": b.h}
            | {"source": b.source, "attributes": b.attributes}
            for b in boxes
        ],
        [{"label": t.label_id, "source": t.source} for t in tags],
    )


# Tags a person set: one by one, or on a selection at once (annotator/services/bulk_tags.py).
PERSON_SOURCES = ("human", "human_bulk")


def image_list(
    *,
    project_id: int,
    status: str | None = None,
    human_label: int | None = None,
    where: Q | Exists | None = None,
    order: str = "id",
    after: tuple | None = None,
    limit: int = 100,
    name: str | None = None,
) -> Page:
    """A page of a project's images for the API, by keyset, in one of annotator.orders.LIST_ORDERS:
    id order (``after`` = (id,)) or the model's most uncertain first (``after`` = (score, id), rows
    with ``score``); one query (and the ranker's own). An order with no ranking yet: an empty page.

    ``human_label``: images a person gave that label (a box or a tag); ``where``: a further condition
    (twinlabel.web.compose passes the model's, e.g. images it suggests a label for)."""
    from django.db.models import OuterRef

    from annotator.models import Box, ImageTag

    images = Image.objects.filter(project_id=project_id)
    if name is not None:  # the file name as uploaded, exactly (index image_project_name)
        images = images.filter(original_name=name)
    if status:
        images = images.filter(status=status)
    if human_label is not None:
        images = images.filter(
            Exists(Box.objects.filter(image=OuterRef("pk"), label_id=human_label, source="human"))
            | Exists(ImageTag.objects.filter(image=OuterRef("pk"), label_id=human_label, source__in=PERSON_SOURCES))
        )
    if where is not None:
        images = images.filter(where)
    ordered = images_ordered(images, project_id=project_id, order=order)
    if ordered is None:
        return Page([], None)
    fields = ("id", "original_name", "width", "height", "status", "version", *(("score",) if order != "id" else ()))
    return keyset_page(ordered.images, ordered.keys, after=after, limit=limit, fields=fields)


def review_note(*, image: Image) -> dict | None:
    """The rejection the annotator should read, while the image waits to be fixed; else None."""
    if image.review_status != ReviewStatus.REJECTED:
        return None
    review = image.reviews.filter(decision=ReviewStatus.REJECTED).select_related("reviewer").order_by("-id").first()
    if review is None:
        return None
    return {
        "comment": review.comment,
        "reviewer": review.reviewer.get_username() if review.reviewer else "",
        "at": review.created_at.isoformat(),
    }


def review_stats(*, project_id: int) -> list[dict]:
    """Per annotator: verdicts accepted and rejected, and the accept rate, in one grouped query."""
    rows = (
        Review.objects.filter(image__project_id=project_id)
        .values("annotator_id", "annotator__username")
        .annotate(
            accepted=Count("id", filter=Q(decision=ReviewStatus.ACCEPTED)),
            rejected=Count("id", filter=Q(decision=ReviewStatus.REJECTED)),
        )
        .order_by("annotator__username")
    )
    return [
        {
            "annotator_id": r["annotator_id"],
            "annotator": r["annotator__username"] or "(deleted user)",
            "accepted": r["accepted"],
            "rejected": r["rejected"],
            "accept_rate": r["accepted"] / (r["accepted"] + r["rejected"]),
        }
        for r in rows
    ]


def review_pending_count(*, project_id: int) -> int:
    return Image.objects.filter(
        project_id=project_id, status=ImageStatus.SUBMITTED, review_status=ReviewStatus.NONE
    ).count()


def project_members(*, project_id: int) -> list[Membership]:
    return list(Membership.objects.filter(project_id=project_id).select_related("user").order_by("user__username"))


def agreement_stats(*, project_id: int) -> list[dict]:
    """Per pair of annotators: images both labeled independently, mean box F1 (matched by IoU >= 0.5)
    and mean tag Jaccard. The matching is not SQL; the snapshots are streamed, two rows per image."""
    pairs: dict[tuple[str, str], list[float]] = {}
    first = None
    snapshots = (
        AnnotationSnapshot.objects.filter(image__project_id=project_id)
        .order_by("image_id", "pass_number")
        .values_list("image_id", "pass_number", "annotator__username", "boxes", "tags")
    )
    for image_id, pass_number, who, boxes, tags in snapshots.iterator(chunk_size=2000):
        if pass_number == 1:
            first = (image_id, who or "(deleted user)", boxes, tags)
            continue
        if first is None or first[0] != image_id:
            continue
        key = tuple(sorted((first[1], who or "(deleted user)")))
        totals = pairs.setdefault(key, [0, 0.0, 0.0])
        totals[0] += 1
        totals[1] += box_f1([tuple(b) for b in first[2]], [tuple(b) for b in boxes])
        totals[2] += tag_jaccard(first[3], tags)
    return [
        {"annotators": list(key), "images": n, "box_f1": f1 / n, "tag_jaccard": jac / n}
        for key, (n, f1, jac) in sorted(pairs.items())
    ]
