"""JSON endpoints for model assistance: runs (start, progress, cancel) and suggestion decisions."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods, require_POST

from annotator import selectors as annotator_selectors
from annotator.access import ADMIN_ONLY, project_for
from annotator.api import BadRequest, image_for, json_endpoint, parse_body
from annotator.models import LabelClass
from labeling import dashboard, selectors, services
from labeling.models import Decision, RunKind, TrainingRun


@require_http_methods(["GET", "POST"])
@json_endpoint
def project_runs(request: HttpRequest, project_id: int) -> JsonResponse:
    """GET: recent runs with live progress. POST {"kind": "pretrain", "config": {...}} or {"kind": "probe"}."""
    if request.method == "GET":
        project, _ = project_for(user=request.user, project_id=project_id)
        return JsonResponse({"runs": selectors.project_runs(project_id=project.id)})
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    body = parse_body(request)
    kind = body.get("kind")
    if kind == RunKind.PRETRAIN:
        config = body.get("config") or {}
        if not isinstance(config, dict):
            raise BadRequest("“config” must be an object.")
        run = services.pretrain_start(project=project, user=request.user, config=config)
    elif kind == RunKind.PROBE:
        run = services.probe_start(project=project, user=request.user)
        if run is None:
            raise ValidationError("A probe fit is already queued or running; it will use the newest labels.")
    else:
        raise BadRequest("“kind” must be “pretrain” or “probe”.")
    return JsonResponse(selectors.run_summary(run), status=201)


@require_http_methods(["GET"])
@json_endpoint
def run_detail(request: HttpRequest, run_id: int) -> JsonResponse:
    run = get_object_or_404(TrainingRun, pk=run_id)
    project_for(user=request.user, project_id=run.project_id)
    return JsonResponse(selectors.run_summary(run))


@require_POST
@json_endpoint
def run_cancel(request: HttpRequest, run_id: int) -> JsonResponse:
    run = get_object_or_404(TrainingRun, pk=run_id)
    project_for(user=request.user, project_id=run.project_id, roles=ADMIN_ONLY)
    return JsonResponse(selectors.run_summary(services.run_cancel(run=run)))


@require_POST
@json_endpoint
def run_retry(request: HttpRequest, run_id: int) -> JsonResponse:
    run = get_object_or_404(TrainingRun.objects.select_related("project"), pk=run_id)
    project_for(user=request.user, project_id=run.project_id, roles=ADMIN_ONLY)
    return JsonResponse(selectors.run_summary(services.run_retry(run=run, user=request.user)), status=201)


@require_http_methods(["GET"])
@json_endpoint
def project_dashboard(request: HttpRequest, project_id: int) -> JsonResponse:
    """Everything the dashboard charts show but the embedding map; see docs/dashboard.md."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    return JsonResponse(dashboard.project_dashboard(project_id=project.id))


@require_http_methods(["GET"])
@json_endpoint
def embedding_map(request: HttpRequest, project_id: int) -> JsonResponse:
    """GET ?after=<image id>&limit=<n>: a page of the embedding map (at most 20,000 points in all)."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    after, limit = request.GET.get("after"), request.GET.get("limit", "5000")
    if (after is not None and not after.isdigit()) or not limit.isdigit() or not 1 <= int(limit) <= 10_000:
        raise BadRequest("“after” must be an image id and “limit” a number from 1 to 10000.")
    return JsonResponse(dashboard.embedding_points(project_id=project.id, after=int(after) if after else None,
                                                   limit=int(limit)))


@require_POST
@json_endpoint
def suggestion_decide(request: HttpRequest, image_id: str, label_id: str, decision: str) -> JsonResponse:
    image = image_for(request, int(image_id), write=True)
    label = get_object_or_404(LabelClass, pk=int(label_id), project_id=image.project_id)
    services.suggestion_decide(image=image, label=label, user=request.user,
                               decision={"accept": Decision.ACCEPTED, "reject": Decision.REJECTED}[decision])
    image.refresh_from_db()
    return JsonResponse(annotator_selectors.annotation_state(image=image))


@require_POST
@json_endpoint
def suggestions_accept_all(request: HttpRequest, image_id: int) -> JsonResponse:
    """Accept every suggested label of the image that nobody has decided on yet."""
    image = image_for(request, image_id, write=True)
    pending = [s["label"] for s in selectors.image_suggestions(image=image) if s["predicted"] and not s["decision"]]
    for label in LabelClass.objects.filter(pk__in=pending):
        services.suggestion_decide(image=image, label=label, user=request.user, decision=Decision.ACCEPTED)
    image.refresh_from_db()
    return JsonResponse(annotator_selectors.annotation_state(image=image))

