"""A project's labels: list and create (docs/api.md); the shapes beside the view."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ADMIN_ONLY, project_for
from annotator.models import LabelClass
from annotator.services.labels import label_create


class LabelSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    color = serializers.CharField(max_length=7, required=False, allow_blank=True, default="")
    hotkey = serializers.CharField(max_length=1, required=False, allow_blank=True, allow_null=True, default=None)
    attributes = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        default=list,
        help_text=(
            'Box attributes of this label: [{"name", "type": checkbox|choice|text, "choices": [...] for a choice}].'
        ),
    )


class LabelOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    color = serializers.CharField()
    hotkey = serializers.CharField(allow_null=True)
    order = serializers.IntegerField()
    attributes = serializers.ListField(child=serializers.DictField())


class LabelListSerializer(serializers.Serializer):
    results = LabelOutSerializer(many=True)


def label_dict(label: LabelClass) -> dict:
    return {
        "id": label.id,
        "name": label.name,
        "color": label.color,
        "hotkey": label.hotkey,
        "order": label.order,
        "attributes": label.attributes,
    }


@extend_schema(methods=["GET"], responses=LabelListSerializer)
@extend_schema(methods=["POST"], request=LabelSerializer, responses={201: LabelOutSerializer})
@api_view(["GET", "POST"])
def project_labels(request: Request, project_id: int) -> Response:
    """GET: the project's labels. POST {name, color?, hotkey?, attributes?} (admin): a new label."""
    if request.method == "GET":
        project, _ = project_for(user=request.user, project_id=project_id)
        return Response({"results": [label_dict(label) for label in project.labels.all()]})
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    form = LabelSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    hotkey = data["hotkey"].strip().lower() if data["hotkey"] else None
    label = label_create(
        project=project, name=data["name"], color=data["color"], hotkey=hotkey, attributes=data["attributes"]
    )
    return Response(label_dict(label), status=201)
