"""The two work pages: annotate (the queue's next image, or one by id) and review."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from annotator import selectors
from annotator.access import ANNOTATE_ROLES, REVIEW_ROLES, project_for
from annotator.models import Image
from annotator.orders import REVIEW_ORDERS, queue_order_valid
from annotator.services import reviews
from annotator.services.queue import queue_next
from labeling.auto_accept import audit_pending_count
from twinlabel.web import compose
from twinlabel.web.links import url_template
from twinlabel.web.pages.images import _positive_int


@login_required
@require_GET
def annotate(request: HttpRequest, project_id: int) -> HttpResponse:
    """The annotate page: the image asked for (?image=ID), else the next one from the queue."""
    project, role = project_for(user=request.user, project_id=project_id, roles=ANNOTATE_ROLES)
    order = request.GET.get("order", "sequential")
    if not queue_order_valid(order):
        order = "sequential"
    image_id = _positive_int(request.GET.get("image"))
    if image_id is not None:
        image = get_object_or_404(Image, pk=image_id, project=project)
    else:
        image = queue_next(project=project, user=request.user, order=order)
    return render(
        request,
        "web/annotate.html",
        {
            "project": project,
            "config": {
                "project": {"id": project.id, "name": project.name},
                "user": request.user.pk,  # keys the image adjustments this person keeps in their browser
                "labels": [
                    {
                        "id": label.id,
                        "name": label.name,
                        "color": label.color,
                        "hotkey": label.hotkey,
                        "attributes": label.attributes,
                    }
                    for label in project.labels.all()
                ],
                "order": order,
                "urls": {
                    "next": reverse("api_queue_next", args=[project.id]),
                    "release": reverse("api_queue_release", args=[project.id]),
                    "annotations": url_template("api_image_annotations", image_id="{id}"),
                    "submit": url_template("api_image_submit", image_id="{id}"),
                    "skip": url_template("api_image_skip", image_id="{id}"),
                    "suggestion": url_template(
                        "api_suggestion_decide",
                        image_id="{id}",
                        label_id="{label}",
                        decision="{decision}",
                        sentinels={"decision": "accept"},
                    ),
                    "acceptAll": url_template("api_suggestions_accept_all", image_id="{id}"),
                    "boxSuggestion": url_template(
                        "api_box_suggestion_decide",
                        image_id="{id}",
                        suggestion_id="{suggestion}",
                        decision="{decision}",
                        sentinels={"decision": "accept"},
                    ),
                    "boxAcceptAll": url_template("api_box_suggestions_accept_all", image_id="{id}"),
                    "review": url_template("api_image_review", image_id="{id}"),
                    "project": reverse("project_detail", args=[project.id]),
                    "similarGrid": reverse("image_grid", args=[project.id]) + "?similar={id}",
                },
            },
            "initial": compose.annotation_state(image=image) if image else None,
        },
    )


@login_required
@require_GET
def review(request: HttpRequest, project_id: int) -> HttpResponse:
    """The reviewer's page: the image asked for (?image=ID), else the next unreviewed submission."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=REVIEW_ROLES)
    image_id = _positive_int(request.GET.get("image"))
    # Images skipped (S) in this run of the page, so the queue hands out the next one instead.
    skipped = [int(i) for i in request.GET.get("skipped", "").split(",")[-200:] if i.isdigit()]
    order = request.GET.get("order") if request.GET.get("order") in REVIEW_ORDERS else "oldest"
    if image_id is not None:
        image = get_object_or_404(Image.objects.select_related("submitted_by"), pk=image_id, project=project)
    else:
        image = reviews.review_next(project=project, user=request.user, exclude=skipped, order=order)
    labels = {label.id: label for label in project.labels.all()}
    boxes = list(image.boxes.order_by("id").values("label_id", "x", "y", "w", "h", "attributes")) if image else []
    for box in boxes:  # percentages, so the overlay scales with the picture
        box["label"] = labels[box["label_id"]]
        box["style"] = (
            f"left:{100 * box['x'] / image.width:.3f}%;top:{100 * box['y'] / image.height:.3f}%;"
            f"width:{100 * box['w'] / image.width:.3f}%;height:{100 * box['h'] / image.height:.3f}%;"
            f"border-color:{box['label'].color}"
        )
    return render(
        request,
        "web/review.html",
        {
            "project": project,
            "image": image,
            "boxes": boxes,
            "tags": [labels[t] for t in image.tags.order_by("id").values_list("label_id", flat=True)] if image else [],
            "history": list(image.reviews.select_related("reviewer").order_by("-id")[:5]) if image else [],
            "pending": selectors.review_pending_count(project_id=project.id),
            "order": order,
            "doubt": compose.model_doubt(image=image) if image else None,
            "audit_pending": audit_pending_count(project_id=project.id),
            "config": {
                "image": image.id if image else None,
                "version": image.version if image else None,
                "url": reverse("api_image_review", args=[image.id]) if image else None,
                "next": reverse("review", args=[project.id]) + ("?order=mistakes" if order == "mistakes" else ""),
                "skipped": skipped,
                "size": [image.width, image.height] if image else None,
                "labels": [
                    {"id": label.id, "name": label.name, "color": label.color, "hotkey": label.hotkey}
                    for label in labels.values()
                ],
                "boxes": [
                    {
                        "label": b["label_id"],
                        "x": b["x"],
                        "y": b["y"],
                        "w": b["w"],
                        "h": b["h"],
                        "attributes": b["attributes"],
                    }
                    for b in boxes
                ],
            },
        },
    )
