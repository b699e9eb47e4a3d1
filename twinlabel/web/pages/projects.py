"""Project pages: the list (and creating one), a project's page, its settings, deleting it."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotator import selectors
from annotator.access import ADMIN_ONLY, ANNOTATE_ROLES, REVIEW_ROLES, project_for
from annotator.formats import registry
from annotator.services.images import import_limits
from annotator.services.duplicates import project_set_queue_duplicates
from annotator.services.projects import project_create, project_set_overlap
from twinlabel.web import dashboard
from twinlabel.web.links import url_template
from twinlabel.web.pages.labels import _with_attributes_text


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
    counts = selectors.project_status_counts(project_id=project.id)
    reviews = dashboard.review_figures(
        project_id=project.id, total=counts["total"], with_agreement=bool(project.overlap_fraction)
    )
    return render(
        request,
        "web/project_detail.html",
        {
            "project": project,
            "role": role,
            "is_admin": role == "admin",
            "can_annotate": role in ANNOTATE_ROLES,
            "can_review": role in REVIEW_ROLES,
            "review_pending": reviews["review_pending"],
            "review_stats": reviews["review_stats"],
            "agreement": reviews["agreement"],
            "reviews_as_of": reviews["as_of"],
            "overlap_percent": round(project.overlap_fraction * 100, 1),
            "counts": counts,
            "labels": [_with_attributes_text(label) for label in project.labels.all()],
            "refit_every": settings.PROBE_REFIT_EVERY,
            "recent": selectors.recent_images(project_id=project.id),
            "export_formats": registry.writers(),
            "import_formats": registry.readers(),
            "runs_config": {
                "url": reverse("api_project_runs", args=[project.id]),
                "isAdmin": role == "admin",
                "cancelUrl": url_template("api_run_cancel", run_id="{id}"),
            },
            "bucket_config": {
                "url": reverse("api_project_bucket_imports", args=[project.id]),
                "endpoints": settings.BUCKET_ENDPOINTS,
                "credentials": sorted(settings.BUCKET_CREDENTIALS),
            },
            "upload_config": {
                "url": reverse("api_project_images", args=[project.id]),
                "batch": 20,
                "thumbUrl": url_template("image_thumbnail", image_id="{id}"),
                "maxBytes": import_limits().max_bytes,
                "maxZipBytes": settings.ZIP_MAX_TOTAL_BYTES,
            },
        },
    )


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
            messages.success(
                request, f"Deleted the project “{project.name}”: {deletion.project_delete_summary(counts)}."
            )
            return redirect("project_list")
        messages.error(request, "Type the project's name exactly to confirm the deletion.")
    return render(
        request,
        "web/project_delete.html",
        {"project": project, "counts": counts},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def project_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    if "queue_duplicates" in request.POST:  # the near-duplicates form: an unticked box is not sent
        project_set_queue_duplicates(project=project, one_per_group="one_per_group" in request.POST)
        return redirect("project_detail", project_id=project.id)
    try:
        project_set_overlap(project=project, percent=request.POST.get("overlap_percent", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("project_detail", project_id=project.id)
