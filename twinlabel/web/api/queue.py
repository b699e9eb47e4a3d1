"""The labeling queue: the next image held for you, and letting images go (docs/api.md)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ANNOTATE_ROLES, project_for
from annotator.services import queue
from twinlabel.web import compose
from twinlabel.web.api import common
from twinlabel.web.api.annotations import AnnotationStateSerializer
from twinlabel.web.api.errors import BadRequest


class QueueNextSerializer(serializers.Serializer):
    image = AnnotationStateSerializer(allow_null=True, help_text="null when no image is left for you")


@extend_schema(request=None, responses=QueueNextSerializer)
@api_view(["POST"])
def queue_next(request: Request, project_id: int) -> Response:
    """POST {order, exclude, release}: the next image nobody else holds, now held for you."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ANNOTATE_ROLES)
    data = common.body(request)
    image = queue.queue_next(
        project=project,
        user=request.user,
        order=str(data.get("order", "sequential")),
        exclude=common.id_list(data.get("exclude", []), "exclude"),
        release=common.id_list(data.get("release", []), "release"),
    )
    return Response({"image": compose.annotation_state(image=image) if image else None})


@extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
@api_view(["POST"])
def queue_release(request: Request, project_id: int) -> Response:
    """POST {images: [ids]} (JSON), or a form with images=1,2 and csrfmiddlewaretoken (what
    navigator.sendBeacon sends when the annotate page closes): let go of images held for you."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ANNOTATE_ROLES)
    raw = common.body(request).get("images", [])
    if isinstance(raw, str):  # the form's "1,2,3"
        if not all(part.strip().isdigit() for part in raw.split(",") if part.strip()):
            raise BadRequest("“images” must be image ids separated by commas.")
        raw = [int(part) for part in raw.split(",") if part.strip()]
    released = queue.queue_release(project=project, user=request.user, image_ids=common.id_list(raw, "images"))
    return Response({"released": released})
