"""Training runs: list and start (pretraining, a probe refit), progress, cancel, retry (docs/api.md)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ADMIN_ONLY, project_for
from annotator.selectors import project_status_counts
from labeling import selectors, services
from labeling.config import COLOURS, FEATURES, PRETRAIN_LIMITS, PROJECTOR_LAYERS, PROJECTOR_WIDTH, TIME_BUDGET_LIMITS
from labeling.config import pretrain_defaults
from labeling.models import RunKind, TrainingRun
from twinlabel.web.api import common
from twinlabel.web.api.errors import BadRequest


def _bounded(key: str) -> serializers.Field:
    low, high = PRETRAIN_LIMITS[key]
    field = serializers.IntegerField if isinstance(low, int) and isinstance(high, int) else serializers.FloatField
    return field(required=False, min_value=low, max_value=high, help_text=f"{low} to {high}")


# Every pretraining setting with its bounds, from labeling/config.py (the check the service runs), so the
# schema and Swagger UI document what a config may hold; unset keys come from the worker's device preset.
PretrainConfigSerializer = type(
    "PretrainConfigSerializer",
    (serializers.Serializer,),
    {
        **{key: _bounded(key) for key in PRETRAIN_LIMITS},
        "projector": serializers.ListField(
            child=serializers.IntegerField(min_value=PROJECTOR_WIDTH[0], max_value=PROJECTOR_WIDTH[1]),
            min_length=PROJECTOR_LAYERS[0],
            max_length=PROJECTOR_LAYERS[1],
            required=False,
            help_text=f"Projector layer widths: {PROJECTOR_LAYERS[0]} to {PROJECTOR_LAYERS[1]} layers of "
            f"{PROJECTOR_WIDTH[0]} to {PROJECTOR_WIDTH[1]}",
        ),
        "small_stem": serializers.BooleanField(required=False, help_text="ResNet stem for small images"),
        "profile": serializers.BooleanField(required=False, help_text="Write a profiler trace"),
        "time_budget_s": serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=TIME_BUDGET_LIMITS[0],
            max_value=TIME_BUDGET_LIMITS[1],
            help_text=f"Train for this long instead of for epochs: {TIME_BUDGET_LIMITS[0]} to {TIME_BUDGET_LIMITS[1]} s",
        ),
        "features": serializers.ChoiceField(choices=list(FEATURES), required=False, help_text="The probe's features"),
        "colour": serializers.ChoiceField(
            choices=list(COLOURS), required=False, help_text="How hard the two views' colours are distorted"
        ),
    },
)


class RunStartSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[RunKind.PRETRAIN, RunKind.PROBE])
    config = PretrainConfigSerializer(required=False)
    confirm = serializers.BooleanField(
        required=False,
        help_text="Start a pretraining estimated to take longer "
        "than PRETRAIN_CONFIRM_ABOVE_S anyway (without it: 400 with the estimate)",
    )


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
    eta_s = serializers.FloatField(
        allow_null=True, help_text="Seconds until an active pretraining (or a probe fit's fine-tuning) is done"
    )
    metrics = serializers.DictField()
    error = serializers.CharField()


class RunListSerializer(serializers.Serializer):
    runs = RunSerializer(many=True)
    pretrain_estimate = serializers.DictField(
        help_text="What Pretrain with the defaults would take on the "
        "worker's device: seconds, text, device, needs_confirmation, config"
    )


@extend_schema(methods=["GET"], responses=RunListSerializer)
@extend_schema(methods=["POST"], request=RunStartSerializer, responses={201: RunSerializer})
@api_view(["GET", "POST"])
def project_runs(request: Request, project_id: int) -> Response:
    """GET: recent runs with live progress. POST {"kind": "pretrain", "config": {...}}, {"kind": "probe"} or
    {"kind": "detector"} (admin)."""
    if request.method == "GET":
        project, _ = project_for(user=request.user, project_id=project_id)
        runs = selectors.project_runs(project_id=project.id)
        defaults = pretrain_defaults(images=project_status_counts(project_id=project.id)["total"])
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
    elif kind == RunKind.DETECTOR:
        run = services.detector_start(project=project, user=request.user)
        if run is None:
            raise ValidationError("A detector fit is already queued or running; it will use the newest boxes.")
    else:
        raise BadRequest("“kind” must be “pretrain”, “probe” or “detector”.")
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


@extend_schema(request=None, responses={201: RunSerializer})
@api_view(["POST"])
def run_retry(request: Request, run_id: int) -> Response:
    """Queue the same run again (same kind and config) after it failed or was cancelled (admin)."""
    run = get_object_or_404(TrainingRun.objects.select_related("project"), pk=run_id)
    project_for(user=request.user, project_id=run.project_id, roles=ADMIN_ONLY)
    return Response(selectors.run_summary(services.run_retry(run=run, user=request.user)), status=201)
