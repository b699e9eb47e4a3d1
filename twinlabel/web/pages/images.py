"""The image grid and the image files themselves (original and thumbnail), permission-checked."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from annotator import selectors
from annotator.access import ANNOTATE_ROLES, project_for
from annotator.models import Image, ImageStatus
from twinlabel.web import compose

SIMILAR_GRID = 60  # the grid's "more like this": one page of the nearest images
MISTAKES_GRID = 120  # the grid's "likely mistakes": the top of the ranking (the API pages through all of it)


def _positive_int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise Http404("Bad page cursor.")
    return int(value)


@login_required
@require_GET
def image_grid(request: HttpRequest, project_id: int) -> HttpResponse:
    project, role = project_for(user=request.user, project_id=project_id)
    status = request.GET.get("status") or None
    if status and status not in ImageStatus.values:
        raise Http404("No such status.")
    similar = _positive_int(request.GET.get("similar"))
    if similar is not None:
        return _similar_grid(request, project, role, similar, status)
    if request.GET.get("order") == "mistakes":
        return _mistakes_grid(request, project, role)
    if request.GET.get("duplicates"):
        return _duplicates_grid(request, project, role)
    page = selectors.image_page(
        project_id=project.id,
        status=status,
        after=_positive_int(request.GET.get("after")),
        before=_positive_int(request.GET.get("before")),
    )
    return render(
        request,
        "web/image_grid.html",
        {
            "project": project,
            "page": page,
            "can_annotate": role in ANNOTATE_ROLES,
            "labels": project.labels.all() if role in ANNOTATE_ROLES else (),
            "status": status or "",
            "statuses": ImageStatus.choices,
        },
    )


def _similar_grid(request: HttpRequest, project, role: str, image_id: int, status: str | None) -> HttpResponse:
    """More like this: the grid of the images nearest ``image_id`` in the embeddings, with scores."""
    image = get_object_or_404(Image.objects.only("id", "original_name"), pk=image_id, project_id=project.id)
    found = compose.similar_images(project_id=project.id, image_id=image.id, k=SIMILAR_GRID, status=status)
    similarity = {row["id"]: row["similarity"] for row in found["results"]}
    images = Image.objects.filter(pk__in=list(similarity)).only(
        "id", "project_id", "original_name", "width", "height", "status", "thumbnail", "version"
    )
    rows = sorted(images, key=lambda row: -similarity[row.id])
    for row in rows:
        row.similarity = similarity[row.id]
    return render(
        request,
        "web/image_grid.html",
        {
            "project": project,
            "page": {"images": rows},
            "can_annotate": role in ANNOTATE_ROLES,
            "labels": project.labels.all() if role in ANNOTATE_ROLES else (),
            "status": status or "",
            "statuses": ImageStatus.choices,
            "similar_to": image,
            "note": found["note"],
        },
    )


def _mistakes_grid(request: HttpRequest, project, role: str) -> HttpResponse:
    """Likely mistakes: the submitted images whose labels the model doubts most, with the label."""
    rows = compose.likely_mistakes(project_id=project.id, limit=MISTAKES_GRID)
    note = "No ranking yet: it comes with the model's next fit on submitted images."
    return _ranked_grid(request, project, role, rows, "mistakes", note)


def _duplicates_grid(request: HttpRequest, project, role: str) -> HttpResponse:
    """Near-duplicates: the images of the current backbone's groups, group by group."""
    rows = compose.duplicate_images(project_id=project.id, limit=MISTAKES_GRID)
    return _ranked_grid(request, project, role, rows, "duplicates", "No near-duplicates found (or no pretraining yet).")


def _ranked_grid(request: HttpRequest, project, role: str, rows: list, view: str, empty_note: str) -> HttpResponse:
    """One page of images in the model's order (``view``: the grid's flag), or ``empty_note`` when there are none."""
    return render(
        request,
        "web/image_grid.html",
        {
            "project": project,
            "page": {"images": rows},
            "can_annotate": role in ANNOTATE_ROLES,
            "labels": project.labels.all() if role in ANNOTATE_ROLES else (),
            "status": "",
            "statuses": ImageStatus.choices,
            view: True,
            "note": None if rows else empty_note,
        },
    )


def _image_file(request: HttpRequest, image_id: int, field: str) -> FileResponse:
    image = get_object_or_404(Image.objects.only("id", "project_id", "sha256", field), pk=image_id)
    project_for(user=request.user, project_id=image.project_id)
    stored = getattr(image, field)
    if settings.MEDIA_REDIRECT:
        # Permission checked above; the storage's URL is signed and expires (S3 querystring auth).
        return HttpResponseRedirect(stored.url)
    try:
        response = FileResponse(stored.open("rb"))
    except FileNotFoundError:
        raise Http404("The image file is missing from storage.") from None
    # Stored images never change (a new upload is a new row), so browsers may keep them for long.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@login_required
@require_GET
def image_file(request: HttpRequest, image_id: int) -> FileResponse:
    return _image_file(request, image_id, "file")


@login_required
@require_GET
def image_thumbnail(request: HttpRequest, image_id: int) -> FileResponse:
    return _image_file(request, image_id, "thumbnail")
