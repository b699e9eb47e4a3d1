"""The dashboard page and a training run's files (TensorBoard logs, profiler trace)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from annotator.access import ADMIN_ONLY, project_for
from labeling import selectors
from labeling.models import TrainingRun
from twinlabel.web.links import url_template


@login_required
@require_GET
def project_dashboard(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    return render(
        request,
        "web/dashboard.html",
        {
            "project": project,
            "config": {
                "project": project.id,
                "urls": {
                    "data": reverse("api_project_dashboard", args=[project.id]),
                    "map": reverse("api_embedding_map", args=[project.id]),
                    "bulkTags": reverse("api_project_bulk_tags", args=[project.id]),
                    "runs": reverse("api_project_runs", args=[project.id]),
                    "run": url_template("api_run_detail", run_id="{id}"),
                    "cancel": url_template("api_run_cancel", run_id="{id}"),
                    "retry": url_template("api_run_retry", run_id="{id}"),
                    "thumb": url_template("image_thumbnail", image_id="{id}"),
                    "annotate": reverse("annotate", args=[project.id]) + "?image={id}",
                },
            },
        },
    )


@login_required
@require_GET
def run_file(request: HttpRequest, run_id: int, name: str) -> FileResponse:
    """One of the run's files listed by ``selectors.run_files``, as a download; nothing else."""
    run = get_object_or_404(TrainingRun, pk=run_id)
    project_for(user=request.user, project_id=run.project_id, roles=ADMIN_ONLY)
    path = selectors.run_file_paths(run_id=run.id).get(name)
    if path is None:
        raise Http404("This run has no such file.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
