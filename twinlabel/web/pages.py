"""Pages and small JSON endpoints. Thin: check access, validate, call one service or selector."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotator import selectors
from annotator.services import reviews
from annotator.services.images import import_limits
from annotator.services.labels import label_create, label_delete, label_update
from annotator.services.members import member_add, member_remove, member_set_role
from annotator.services.projects import project_create, project_set_overlap
from annotator.access import ADMIN_ONLY, ANNOTATE_ROLES, CSRF_FAILURE_MESSAGE, REVIEW_ROLES, project_for
from annotator.orders import queue_order_valid
from annotator.services.queue import queue_next
from twinlabel.web import compose
from annotator.attributes import specs_from_text, specs_to_text
from annotator.formats import registry
from twinlabel.web.links import url_template
from annotator.models import Image, ImageStatus, LabelClass, Membership, Project, Role


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    message = CSRF_FAILURE_MESSAGE
    if request.path.startswith("/api/"):
        return JsonResponse({"error": message}, status=403)
    return render(request, "web/csrf_failure.html", {"message": message}, status=403)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    # Not only "SELECT 1": a database without our tables (not migrated, or the wrong one) answers
    # that too, and then every page would fail while the health check said all was well.
    try:
        Project.objects.order_by().values_list("id")[:1].exists()
    except DatabaseError as error:
        return JsonResponse({"ok": False, "database": connection.vendor,
                             "error": f"the database is not usable ({error}); run manage.py migrate"}, status=503)
    return JsonResponse({"ok": True, "database": connection.vendor})


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        labels = [name for name in request.POST.get("labels", "").split(",") if name.strip()]
        try:
            project = project_create(name=request.POST.get("name", ""), labels=labels, user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("project_list")
        return redirect("project_detail", project_id=project.id)
    projects = list(selectors.projects_for_user(user=request.user))
    return render(request, "web/project_list.html", {"projects": projects})


@login_required
@require_GET
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project, role = project_for(user=request.user, project_id=project_id)
    return render(request, "web/project_detail.html", {
        "project": project,
        "role": role,
        "is_admin": role == "admin",
        "can_annotate": role in ANNOTATE_ROLES,
        "can_review": role in REVIEW_ROLES,
        "review_pending": selectors.review_pending_count(project_id=project.id),
        "review_stats": selectors.review_stats(project_id=project.id),
        "agreement": selectors.agreement_stats(project_id=project.id) if project.overlap_fraction else [],
        "overlap_percent": round(project.overlap_fraction * 100, 1),
        "counts": selectors.project_status_counts(project_id=project.id),
        "labels": [_with_attributes_text(label) for label in project.labels.all()],
        "refit_every": settings.PROBE_REFIT_EVERY,
        "recent": selectors.recent_images(project_id=project.id),
        "export_formats": registry.writers(),
        "import_formats": registry.readers(),
        "runs_config": {"url": reverse("api_project_runs", args=[project.id]), "isAdmin": role == "admin",
                        "cancelUrl": url_template("api_run_cancel", run_id="{id}")},
        "upload_config": {"url": reverse("api_project_images", args=[project.id]), "batch": 20,
                          "thumbUrl": url_template("image_thumbnail", image_id="{id}"),
                          "maxBytes": import_limits().max_bytes,
                          "maxZipBytes": settings.ZIP_MAX_TOTAL_BYTES},
    })


@login_required
@require_http_methods(["GET", "POST"])
def project_delete(request: HttpRequest, project_id: int) -> HttpResponse:
    """GET: what deleting the project removes, counted, and a form that asks for its name. POST
    with the name typed: delete the project, its rows and its files."""
    from annotator.services import deletion

    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    counts = deletion.project_delete_counts(project=project)
    if request.method == "POST":
        if request.POST.get("confirm", "").strip() == project.name:
            deletion.project_delete(project=project)
            messages.success(request, f"Deleted the project “{project.name}”: {deletion.project_delete_summary(counts)}.")
            return redirect("project_list")
        messages.error(request, "Type the project's name exactly to confirm the deletion.")
    return render(request, "web/project_delete.html", {"project": project, "counts": counts},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def project_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    try:
        project_set_overlap(project=project, percent=request.POST.get("overlap_percent", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("project_detail", project_id=project.id)


@login_required
@require_POST
def label_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    hotkey = request.POST.get("hotkey")
    try:
        label_create(project=project, name=request.POST.get("name", ""),
                              color=request.POST.get("color", ""), hotkey=hotkey.strip().lower() if hotkey else None)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("project_detail", project_id=project.id)


def _with_attributes_text(label: LabelClass) -> LabelClass:
    label.attributes_text = specs_to_text(label.attributes)  # the one-line form the label row edits
    return label


@login_required
@require_POST
def label_edit(request: HttpRequest, project_id: int, label_id: int) -> HttpResponse:
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    label = get_object_or_404(LabelClass, pk=label_id, project=project)
    try:
        if request.POST.get("action") == "delete":
            label_delete(label=label)
            messages.success(request, f"Deleted the label “{label.name}”.")
        else:
            text = request.POST.get("attributes")  # absent from older forms: keep the definitions
            label_update(label=label, name=request.POST.get("name", ""),
                                  color=request.POST.get("color", ""), hotkey=request.POST.get("hotkey", ""),
                                  attributes=None if text is None else specs_from_text(text))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("project_detail", project_id=project.id)


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
    return render(request, "web/annotate.html", {
        "project": project,
        "config": {
            "project": {"id": project.id, "name": project.name},
            "user": request.user.pk,  # keys the image adjustments this person keeps in their browser
            "labels": [{"id": label.id, "name": label.name, "color": label.color, "hotkey": label.hotkey,
                        "attributes": label.attributes} for label in project.labels.all()],
            "order": order,
            "urls": {
                "next": reverse("api_queue_next", args=[project.id]),
                "release": reverse("api_queue_release", args=[project.id]),
                "annotations": url_template("api_image_annotations", image_id="{id}"),
                "submit": url_template("api_image_submit", image_id="{id}"),
                "skip": url_template("api_image_skip", image_id="{id}"),
                "suggestion": url_template("api_suggestion_decide", image_id="{id}", label_id="{label}",
                                           decision="{decision}", sentinels={"decision": "accept"}),
                "acceptAll": url_template("api_suggestions_accept_all", image_id="{id}"),
                "review": url_template("api_image_review", image_id="{id}"),
                "project": reverse("project_detail", args=[project.id]),
            },
        },
        "initial": compose.annotation_state(image=image) if image else None,
    })


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
    page = selectors.image_page(project_id=project.id, status=status, after=_positive_int(request.GET.get("after")),
                                before=_positive_int(request.GET.get("before")))
    return render(request, "web/image_grid.html", {
        "project": project, "page": page, "can_annotate": role in ANNOTATE_ROLES, "status": status or "", "statuses": ImageStatus.choices,
    })


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


@login_required
@require_http_methods(["GET", "POST"])
def members(request: HttpRequest, project_id: int) -> HttpResponse:
    """Admins see the members, add people by user name, change roles and remove people."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    if request.method == "POST":
        try:
            member_add(project=project, username=request.POST.get("username", ""),
                                role=request.POST.get("role", Role.ANNOTATOR), by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return redirect("members", project_id=project.id)
    return render(request, "web/members.html", {
        "project": project, "members": selectors.project_members(project_id=project.id), "roles": Role.choices,
    })


@login_required
@require_POST
def member_edit(request: HttpRequest, project_id: int, membership_id: int) -> HttpResponse:
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id, project=project)
    try:
        if request.POST.get("action") == "remove":
            member_remove(membership=membership)
            messages.success(request, f"Removed {membership.user.get_username()} from the project.")
        else:
            member_set_role(membership=membership, role=request.POST.get("role", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("members", project_id=project.id)


@login_required
@require_GET
def review(request: HttpRequest, project_id: int) -> HttpResponse:
    """The reviewer's page: the image asked for (?image=ID), else the next unreviewed submission."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=REVIEW_ROLES)
    image_id = _positive_int(request.GET.get("image"))
    # Images skipped (S) in this run of the page, so the queue hands out the next one instead.
    skipped = [int(i) for i in request.GET.get("skipped", "").split(",")[-200:] if i.isdigit()]
    if image_id is not None:
        image = get_object_or_404(Image.objects.select_related("submitted_by"), pk=image_id, project=project)
    else:
        image = reviews.review_next(project=project, user=request.user, exclude=skipped)
    labels = {label.id: label for label in project.labels.all()}
    boxes = list(image.boxes.order_by("id").values("label_id", "x", "y", "w", "h", "attributes")) if image else []
    for box in boxes:  # percentages, so the overlay scales with the picture
        box["label"] = labels[box["label_id"]]
        box["style"] = (f"left:{100 * box['x'] / image.width:.3f}%;top:{100 * box['y'] / image.height:.3f}%;"
                        f"width:{100 * box['w'] / image.width:.3f}%;height:{100 * box['h'] / image.height:.3f}%;"
                        f"border-color:{box['label'].color}")
    return render(request, "web/review.html", {
        "project": project, "image": image, "boxes": boxes,
        "tags": [labels[t] for t in image.tags.order_by("id").values_list("label_id", flat=True)] if image else [],
        "history": list(image.reviews.select_related("reviewer").order_by("-id")[:5]) if image else [],
        "pending": selectors.review_pending_count(project_id=project.id),
        "config": {"image": image.id if image else None, "version": image.version if image else None,
                   "url": reverse("api_image_review", args=[image.id]) if image else None,
                   "next": reverse("review", args=[project.id]), "skipped": skipped,
                   "size": [image.width, image.height] if image else None,
                   "labels": [{"id": label.id, "name": label.name, "color": label.color, "hotkey": label.hotkey}
                              for label in labels.values()],
                   "boxes": [{"label": b["label_id"], "x": b["x"], "y": b["y"], "w": b["w"], "h": b["h"],
                              "attributes": b["attributes"]} for b in boxes]},
    })
