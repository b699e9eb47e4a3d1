"""Model-assistance endpoints (docs/api.md): training runs (start, progress, cancel) and
suggestions (list, accept, reject). Thin: access check, one service or selector."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ADMIN_ONLY, project_for
from annotator.models import LabelClass
from labeling import selectors, services
from labeling.config import pretrain_defaults
from labeling.models import Decision, RunKind, TrainingRun
from twinlabel.web import compose, dashboard
from twinlabel.web.api import common
from twinlabel.web.api.errors import BadRequest
from twinlabel.web.api.serializers import AnnotationStateSerializer


class RunStartSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RunKind.choices)
    config = serializers.DictField(required=False, help_text="Pretraining settings (resolution, epochs, "
                                   "time_budget_s, ...); unset ones come from the worker's device preset")
    confirm = serializers.BooleanField(required=False, help_text="Start a pretraining estimated to take longer "
                                       "than PRETRAIN_CONFIRM_ABOVE_S anyway (without it: 400 with the estimate)")


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=RunKind.choices)
    status = serializers.CharField()
    config = serializers.DictField()
    epoch = serializers.IntegerField()
    epochs = serializers.IntegerField()
    step = serializers.IntegerField()
    loss = serializers.FloatField(allow_null=True)
    images_per_s = serializers.FloatField(allow_null=True)
    eta_s = serializers.FloatField(allow_null=True, help_text="Seconds until an active pretraining is done")
    metrics = serializers.DictField()
    error = serializers.CharField()


class RunListSerializer(serializers.Serializer):
    runs = RunSerializer(many=True)
    pretrain_estimate = serializers.DictField(help_text="What Pretrain with the defaults would take on the "
                                              "worker's device: seconds, text, device, needs_confirmation, config")


class SuggestionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    image = serializers.IntegerField()
    label = serializers.IntegerField()
    probability = serializers.FloatField()
    predicted = serializers.BooleanField()
    decision = serializers.CharField(allow_null=True)


class SuggestionPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = SuggestionSerializer(many=True)


@extend_schema(methods=["GET"], responses=RunListSerializer)
@extend_schema(methods=["POST"], request=RunStartSerializer, responses={201: RunSerializer})
@api_view(["GET", "POST"])
def project_runs(request: Request, project_id: int) -> Response:
    """GET: recent runs with live progress. POST {"kind": "pretrain", "config": {...}} or {"kind": "probe"} (admin)."""
    if request.method == "GET":
        project, _ = project_for(user=request.user, project_id=project_id)
        runs = selectors.project_runs(project_id=project.id)
        defaults = pretrain_defaults()
        estimate = selectors.pretrain_estimate(project=project, config=defaults, recent_runs=runs)
        return Response({"runs": runs, "pretrain_estimate": {**estimate, "config": defaults}})
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    data = common.body(request)
    kind = data.get("kind")
    if kind == RunKind.PRETRAIN:
        config = data.get("config") or {}
        if not isinstance(config, dict):
            raise BadRequest("“config” must be an object.")
        confirm = data.get("confirm", False)
        if not isinstance(confirm, bool):
            raise BadRequest("“confirm” must be true or false.")
        run = services.pretrain_start(project=project, user=request.user, config=config, confirm=confirm)
    elif kind == RunKind.PROBE:
        run = services.probe_start(project=project, user=request.user)
        if run is None:
            raise ValidationError("A probe fit is already queued or running; it will use the newest labels.")
    else:
        raise BadRequest("“kind” must be “pretrain” or “probe”.")
    return Response(selectors.run_summary(run), status=201)


@extend_schema(responses=RunSerializer)
@api_view(["GET"])
def run_detail(request: Request, run_id: int) -> Response:
    """A run's progress (epoch, step, loss, images/s) and, when done, its metrics."""
    run = get_object_or_404(TrainingRun, pk=run_id)
    project_for(user=request.user, project_id=run.project_id)
    return Response(selectors.run_summary(run))


@extend_schema(request=None, responses=RunSerializer)
@api_view(["POST"])
def run_cancel(request: Request, run_id: int) -> Response:
    run = get_object_or_404(TrainingRun, pk=run_id)
    project_for(user=request.user, project_id=run.project_id, roles=ADMIN_ONLY)
    return Response(selectors.run_summary(services.run_cancel(run=run)))


@extend_schema(parameters=[
    OpenApiParameter("label", int), OpenApiParameter("min_probability", float),
    OpenApiParameter("max_probability", float), OpenApiParameter("predicted", bool),
    OpenApiParameter("cursor", str), OpenApiParameter("limit", int)], responses=SuggestionPageSerializer)
@api_view(["GET"])
def project_suggestions(request: Request, project_id: int) -> Response:
    """The current model's suggestions, likeliest first, with any decision taken (cursor pagination)."""
    project, _ = project_for(user=request.user, project_id=project_id)
    predicted = request.query_params.get("predicted")
    if predicted not in (None, "", "true", "false", "1", "0"):
        raise BadRequest("“predicted” must be true or false.")
    page = selectors.suggestion_page(
        project_id=project.id, label_id=common.optional_int(request, "label"),
        min_probability=common.optional_float(request, "min_probability"),
        max_probability=common.optional_float(request, "max_probability"),
        predicted=None if predicted in (None, "") else predicted in ("true", "1"),
        after=common.cursor_decode(request.query_params.get("cursor"), 2),
        limit=min(common.optional_int(request, "limit") or 100, 1000))
    return Response({"next": common.next_url(request, page.next_key), "results": page.suggestions})


@extend_schema(request=None, responses=AnnotationStateSerializer, parameters=[
    OpenApiParameter("decision", str, OpenApiParameter.PATH, enum=["accept", "reject"])])
@api_view(["POST"])
def image_suggestion_decide(request: Request, image_id: str, label_id: str, decision: str) -> Response:
    """The annotate page's form: decide on the current suggestion of ``label_id`` for the image;
    ``undo`` takes the decision back (and the tag an accept added)."""
    image = common.image_for(request, int(image_id), write=True)
    label = get_object_or_404(LabelClass, pk=int(label_id), project_id=image.project_id)
    if decision == "undo":
        services.suggestion_undo(image=image, label=label, user=request.user)
    else:
        services.suggestion_decide(image=image, label=label, user=request.user,
                                   decision={"accept": Decision.ACCEPTED, "reject": Decision.REJECTED}[decision])
    image.refresh_from_db()
    return Response(compose.annotation_state(image=image))


@extend_schema(request=None, responses=AnnotationStateSerializer)
@api_view(["POST"])
def image_suggestions_accept_all(request: Request, image_id: int) -> Response:
    """Accept every suggested label of the image that nobody has decided on yet."""
    image = common.image_for(request, image_id, write=True)
    pending = [s["label"] for s in selectors.image_suggestions(image=image) if s["predicted"] and not s["decision"]]
    for label in LabelClass.objects.filter(pk__in=pending):
        services.suggestion_decide(image=image, label=label, user=request.user, decision=Decision.ACCEPTED)
    image.refresh_from_db()
    return Response(compose.annotation_state(image=image))


class SuggestionSettingsSerializer(serializers.Serializer):
    precision_target = serializers.FloatField(required=False, help_text="0.5 to 0.999; default 0.9")
    label_targets = serializers.DictField(child=serializers.FloatField(allow_null=True), required=False,
                                          help_text="{label id: target, or null for the project's}")


@extend_schema(methods=["GET"], responses={200: OpenApiTypes.OBJECT})
@extend_schema(methods=["PATCH"], request=SuggestionSettingsSerializer, responses={200: OpenApiTypes.OBJECT})
@api_view(["GET", "PATCH"])
def suggestion_settings(request: Request, project_id: int) -> Response:
    """GET: the precision targets and each label's standing. PATCH (admin): change them; a refit is queued."""
    if request.method == "GET":
        project, _ = project_for(user=request.user, project_id=project_id)
        return Response(selectors.suggestion_settings(project_id=project.id))
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    data = common.body(request)
    unknown = set(data) - {"precision_target", "label_targets"}
    if unknown:
        raise BadRequest(f"Unknown setting(s): {', '.join(sorted(unknown))}; use precision_target, label_targets.")
    services.suggestion_settings_update(project=project, precision_target=data.get("precision_target"),
                                        label_targets=data.get("label_targets"))
    return Response(selectors.suggestion_settings(project_id=project.id))


@extend_schema(request=None, responses={201: RunSerializer})
@api_view(["POST"])
def run_retry(request: Request, run_id: int) -> Response:
    """Queue the same run again (same kind and config) after it failed or was cancelled (admin)."""
    run = get_object_or_404(TrainingRun.objects.select_related("project"), pk=run_id)
    project_for(user=request.user, project_id=run.project_id, roles=ADMIN_ONLY)
    return Response(selectors.run_summary(services.run_retry(run=run, user=request.user)), status=201)


@extend_schema(responses={200: OpenApiTypes.OBJECT})
@api_view(["GET"])
def project_dashboard(request: Request, project_id: int) -> Response:
    """Everything the dashboard charts show but the embedding map; see docs/dashboard.md (admin)."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    return Response(dashboard.project_dashboard(project_id=project.id))


@extend_schema(parameters=[OpenApiParameter("after", int), OpenApiParameter("limit", int)],
               responses={200: OpenApiTypes.OBJECT})
@api_view(["GET"])
def embedding_map(request: Request, project_id: int) -> Response:
    """GET ?after=<image id>&limit=<n>: a page of the embedding map (at most 20,000 points in all; admin)."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    after, limit = request.query_params.get("after"), request.query_params.get("limit", "5000")
    if (after is not None and not after.isdigit()) or not limit.isdigit() or not 1 <= int(limit) <= 10_000:
        raise BadRequest("“after” must be an image id and “limit” a number from 1 to 10000.")
    return Response(dashboard.embedding_points(project_id=project.id, after=int(after) if after else None,
                                               limit=int(limit)))
