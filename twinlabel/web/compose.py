"""Where one request shows both apps' data: the annotation domain's and model assistance's. The only
module besides the site's settings and URLs that imports both, so that neither app imports the other
for a page's sake (annotator never imports labeling; see docs/architecture.md)."""

from __future__ import annotations

from django.db.models import Q

from annotator import selectors
from annotator.paging import Page
from annotator.models import Image
from labeling import curation
from labeling.models import CurationScore, ProjectModelState
from labeling.selectors import current_model_view, image_box_suggestions, image_suggestions, suggested_as


def annotation_state(*, image: Image, written: tuple[list, list] | None = None) -> dict:
    """What the annotate page needs of one image (docs/annotate-api.md): the annotation domain's state
    with the current model's suggestions, the detector's box suggestions and the model's note, in the answer's documented key order."""
    state = selectors.annotation_state(image=image, written=written)
    review = state.pop("review")
    probe_run_id, detector_run_id, note, box_note = current_model_view(project_id=image.project_id)
    return {
        **state,
        "suggestions": image_suggestions(image=image, run_id=probe_run_id),
        "box_suggestions": image_box_suggestions(image=image, run_id=detector_run_id),
        "model_note": note,
        "box_note": box_note,
        "review": review,
    }


def image_list(*, project_id: int, suggested_label: int | None = None, **filters) -> Page:
    """annotator.selectors.image_list (its ``filters``), and ``suggested_label``: only images the
    current probe suggests that label for, or the current detector a box of it (none before either)."""
    where = None
    if suggested_label is not None:
        found = suggested_as(project_id=project_id, label_id=suggested_label)
        if found is None:
            return Page([], None)
        where = found[0]
    return selectors.image_list(project_id=project_id, where=where, **filters)


def similar_images(
    *, project_id: int, image_id: int, k: int, status: str | None = None, human_label: int | None = None
) -> dict:
    """More like this: the ``k`` images nearest ``image_id`` by cosine of the current backbone's
    embeddings, most similar first, each with its ``similarity``; cut by status and human label.
    A filtered request looks at the 20 k nearest (at least 200) and keeps those that pass, so a
    rare filter may return fewer than k."""
    filtered = status is not None or human_label is not None
    try:
        found = curation.similar_ids(
            project_id=project_id, image_id=image_id, k=min(max(20 * k, 200), 5000) if filtered else k
        )
    except curation.NotEmbedded:
        return {
            "run": None,
            "note": "This image has no embedding yet: it came after the last pretraining.",
            "results": [],
        }
    if found is None:
        return {"run": None, "note": "No embeddings yet: start a pretraining on the dashboard.", "results": []}
    run_id, pairs = found
    similarity = dict(pairs)
    page = selectors.image_list(
        project_id=project_id,
        status=status,
        human_label=human_label,
        where=Q(pk__in=list(similarity)),
        limit=len(pairs) or 1,
    )
    rows = sorted(page.rows, key=lambda row: -similarity[row["id"]])[:k]
    return {"run": run_id, "note": None, "results": [{**row, "similarity": similarity[row["id"]]} for row in rows]}


def model_doubt(*, image: Image) -> dict | None:
    """On the review page: the label of this submission the current probe doubts most (out of fold),
    when it is a likely mistake: a given tag the probe gives under 0.5, or a missing one over 0.5."""
    run_id = (
        ProjectModelState.objects.filter(project_id=image.project_id).values_list("probe_run_id", flat=True).first()
    )
    note = curation.mistake_note(image_id=image.id, run_id=run_id)
    if note is None or note["score"] < 0.5:
        return None
    return note


def likely_mistakes(*, project_id: int, limit: int) -> list[Image]:
    """The image grid's "likely mistakes": submitted images, the ones whose labels the current probe
    doubts most first (annotator.orders "mistakes"), each with ``doubt`` (the label and its
    out-of-fold probability) and ``similarity`` left unset. Empty before a probe fit."""
    from annotator.orders import images_ordered

    images = Image.objects.filter(project_id=project_id, status="submitted").only(
        "id", "project_id", "original_name", "width", "height", "status", "thumbnail", "version"
    )
    ordered = images_ordered(images, project_id=project_id, order="mistakes")
    if ordered is None:
        return []
    rows = list(ordered.images[:limit])
    notes = {
        row["image_id"]: row
        for row in CurationScore.objects.filter(run_id=_probe_run_id(project_id), image_id__in=[r.id for r in rows])
        .filter(kind="mistake")
        .values("image_id", "label__name", "given", "probability")
    }
    for row in rows:
        row.doubt = notes.get(row.id)
    return rows


def _probe_run_id(project_id: int) -> int | None:
    return ProjectModelState.objects.filter(project_id=project_id).values_list("probe_run_id", flat=True).first()


def duplicate_images(*, project_id: int, limit: int) -> list[Image]:
    """The image grid's "near-duplicates": images of the current backbone's groups, group by group
    (at most ``limit`` images), each with ``group`` and ``group_size``."""
    page = curation.duplicate_groups_page(project_id=project_id, limit=max(1, limit // 2))
    ids = [i for g in page["groups"] for i in g["images"]][:limit]
    group = {i: (g["group"], len(g["images"])) for g in page["groups"] for i in g["images"]}
    images = {
        row.id: row
        for row in Image.objects.filter(pk__in=ids).only(
            "id", "project_id", "original_name", "width", "height", "status", "thumbnail", "version"
        )
    }
    rows = [images[i] for i in ids if i in images]
    for row in rows:
        row.group, row.group_size = group[row.id]
    return rows
