"""Adding and editing a project's labels (the forms on the project page)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from annotator.access import ADMIN_ONLY, project_for
from annotator.attributes import specs_from_text, specs_to_text
from annotator.models import LabelClass
from annotator.services.labels import label_create, label_delete, label_update


@login_required
@require_POST
def label_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    hotkey = request.POST.get("hotkey")
    try:
        label_create(
            project=project,
            name=request.POST.get("name", ""),
            color=request.POST.get("color", ""),
            hotkey=hotkey.strip().lower() if hotkey else None,
        )
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
            label_update(
                label=label,
                name=request.POST.get("name", ""),
                color=request.POST.get("color", ""),
                hotkey=request.POST.get("hotkey", ""),
                attributes=None if text is None else specs_from_text(text),
            )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("project_detail", project_id=project.id)
