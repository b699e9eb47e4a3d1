"""The model's suggestions: the project's list, a decision on an image's suggestion (accept, reject,
undo), accept-all, and the precision targets behind "confident" (docs/api.md)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ADMIN_ONLY, REVIEW_ROLES, project_for
from annotator.models import LabelClass
from labeling import auto_accept, selectors, services
from labeling.models import AutoTag, Decision
from twinlabel.web import compose
from twinlabel.web.api import common
from twinlabel.web.api.annotations import AnnotationStateSerializer
from twinlabel.web.api.errors import BadRequest


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


@extend_schema(
    parameters=[
        OpenApiParameter("label", int),
        OpenApiParameter("min_probability", float),
        OpenApiParameter("max_probability", float),
        OpenApiParameter("predicted", bool),
        OpenApiParameter("cursor", str),
        OpenApiParameter("limit", int),
    ],
    responses=SuggestionPageSerializer,
)
@api_view(["GET"])
def project_suggestions(request: Request, project_id: int) -> Response:
    """The current model's suggestions, likeliest first, with any decision taken (cursor pagination)."""
    project, _ = project_for(user=request.user, project_id=project_id)
    predicted = request.query_params.get("predicted")
    if predicted not in (None, "", "true", "false", "1", "0"):
        raise BadRequest("“predicted” must be true or false.")
    page = selectors.suggestion_page(
        project_id=project.id,
        label_id=common.optional_int(request, "label"),
        min_probability=common.optional_float(request, "min_probability"),
        max_probability=common.optional_float(request, "max_probability"),
        predicted=None if predicted in (None, "") else predicted in ("true", "1"),
        after=common.cursor_decode(request.query_params.get("cursor"), 2),
        limit=min(common.optional_int(request, "limit") or 100, 1000),
    )
    return Response({"next": common.next_url(request, page.next_key), "results": page.rows})


@extend_schema(
    request=None,
    responses=AnnotationStateSerializer,
    parameters=[OpenApiParameter("decision", str, OpenApiParameter.PATH, enum=["accept", "reject"])],
)
@api_view(["POST"])
def image_suggestion_decide(request: Request, image_id: str, label_id: str, decision: str) -> Response:
    """The annotate page's form: decide on the current suggestion of ``label_id`` for the image;
    ``undo`` takes the decision back (and the tag an accept added)."""
    image = common.image_for(request, int(image_id), write=True)
    label = get_object_or_404(LabelClass, pk=int(label_id), project_id=image.project_id)
    if decision == "undo":
        services.suggestion_undo(image=image, label=label, user=request.user)
    else:
        services.suggestion_decide(
            image=image,
            label=label,
            user=request.user,
            decision={"accept": Decision.ACCEPTED, "reject": Decision.REJECTED}[decision],
        )
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
    label_targets = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        required=False,
        help_text="{label id: target, or null for the project's}",
    )
    auto_accept = serializers.BooleanField(required=False, help_text="suggestions above the auto target become tags")
    auto_accept_target = serializers.FloatField(required=False, help_text="0.5 to 0.999; default 0.97")
    audit_rate = serializers.FloatField(required=False, help_text="0 to 1: share of auto-accepted tags audited")


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
    known = ("precision_target", "label_targets", "auto_accept", "auto_accept_target", "audit_rate")
    unknown = set(data) - set(known)
    if unknown:
        raise BadRequest(f"Unknown setting(s): {', '.join(sorted(unknown))}; use {', '.join(known)}.")
    services.suggestion_settings_update(project=project, **{k: data.get(k) for k in known})
    return Response(selectors.suggestion_settings(project_id=project.id))


class AutoTagSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    image = serializers.IntegerField()
    label = serializers.IntegerField()
    probability = serializers.FloatField()
    run = serializers.IntegerField(allow_null=True)
    audit_result = serializers.CharField(help_text="blank: not in the sample; pending, confirmed or rejected")


class AuditNextSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    item = AutoTagSerializer(allow_null=True)


class AuditVerdictSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=["confirmed", "rejected"])


def _auto_tag_json(tag: AutoTag) -> dict:
    return {
        "id": tag.id,
        "image": tag.image_id,
        "label": tag.label_id,
        "probability": tag.probability,
        "run": tag.run_id,
        "audit_result": tag.audit_result,
    }


@extend_schema(responses={200: AuditNextSerializer})
@api_view(["GET"])
def audit_next(request: Request, project_id: int) -> Response:
    """The next auto-accepted tag of the audit sample waiting for a reviewer (reviewers and admins)."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=REVIEW_ROLES)
    item = auto_accept.audit_next(project_id=project.id)
    pending = auto_accept.audit_pending_count(project_id=project.id)
    return Response({"pending": pending, "item": _auto_tag_json(item) if item else None})


@extend_schema(request=AuditVerdictSerializer, responses={200: AutoTagSerializer})
@api_view(["POST"])
def audit_decide(request: Request, auto_tag_id: int) -> Response:
    """Confirm an auto-accepted tag of the audit sample, or reject it (the tag is removed)."""
    tag = get_object_or_404(AutoTag.objects.select_related("image", "label"), pk=auto_tag_id)
    project_for(user=request.user, project_id=tag.image.project_id, roles=REVIEW_ROLES)
    verdict = common.body(request).get("verdict")
    return Response(_auto_tag_json(auto_accept.audit_decide(auto_tag=tag, user=request.user, verdict=str(verdict))))
