"""The audit page: a reviewer confirms or rejects the random sample of auto-accepted tags, one at a
time (labeling/auto_accept.py). Plain forms, so it works with no script: Y confirms, N rejects."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotator.access import REVIEW_ROLES, project_for
from labeling.auto_accept import audit_decide, audit_next, audit_pending_count
from labeling.models import AuditResult, AutoTag


@login_required
@require_http_methods(["GET", "POST"])
def audit(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for(user=request.user, project_id=project_id, roles=REVIEW_ROLES)
    if request.method == "POST":
        auto_tag = get_object_or_404(
            AutoTag.objects.select_related("image", "label"),
            pk=request.POST.get("auto_tag") if str(request.POST.get("auto_tag", "")).isdigit() else 0,
            image__project=project,
        )
        try:
            audit_decide(auto_tag=auto_tag, user=request.user, verdict=request.POST.get("verdict", ""))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return redirect("audit", project_id=project.id)
    return render(
        request,
        "web/audit.html",
        {
            "project": project,
            "item": audit_next(project_id=project.id),
            "pending": audit_pending_count(project_id=project.id),
            "confirmed": AuditResult.CONFIRMED,
            "rejected": AuditResult.REJECTED,
        },
    )
