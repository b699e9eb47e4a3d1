"""A project's members and their roles."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotator import selectors
from annotator.access import ADMIN_ONLY, project_for
from annotator.models import Membership, Role
from annotator.services.members import member_add, member_remove, member_set_role


@login_required
@require_http_methods(["GET", "POST"])
def members(request: HttpRequest, project_id: int) -> HttpResponse:
    """Admins see the members, add people by user name, change roles and remove people."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    if request.method == "POST":
        try:
            member_add(
                project=project,
                username=request.POST.get("username", ""),
                role=request.POST.get("role", Role.ANNOTATOR),
                by=request.user,
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return redirect("members", project_id=project.id)
    return render(
        request,
        "web/members.html",
        {
            "project": project,
            "members": selectors.project_members(project_id=project.id),
            "roles": Role.choices,
        },
    )


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
