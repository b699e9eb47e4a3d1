"""An image's annotations: read and save them (versioned: 409 on a stale version), submit, skip, and
a reviewer's verdict (docs/api.md); the shapes beside the views."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import REVIEW_ROLES
from annotator.models import Source
from annotator.services import annotations, reviews
from annotator.services.annotations import BoxIn, annotation_save
from twinlabel.web import compose
from twinlabel.web.api import common
from twinlabel.web.api.errors import BadRequest


# One box as the API reads it: strict types (not "1" for 1, not true for 1), and a message that names
# the field a client got wrong. The fields describe the schema; ``to_internal_value`` reads. (A comment,
# not a docstring: drf-spectacular would put a docstring into the schema.)
class BoxSerializer(serializers.Serializer):
    label = serializers.IntegerField(help_text="Label id")
    x = serializers.FloatField(help_text="Image pixels, origin top-left")
    y = serializers.FloatField()
    w = serializers.FloatField()
    h = serializers.FloatField()
    source = serializers.CharField(
        required=False,
        help_text=(
            "“model_adjusted” for one of the model's boxes a person moved, resized or relabeled (kept as such "
            "for as many boxes as the image held of the model's); any other value is ignored: a box left in place "
            "keeps its source."
        ),
    )
    attributes = serializers.DictField(
        required=False,
        help_text=(
            "Only what is set: occluded / truncated / difficult (true), and the attributes the label defines "
            "(checkbox: true, choice: one of its values, text)."
        ),
    )

    def to_internal_value(self, data) -> BoxIn:
        if not isinstance(data, dict):
            raise BadRequest("Each box must be an object with label, x, y, w, h.")
        attributes = data.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise BadRequest('A box\'s “attributes” must be an object, e.g. {"occluded": true}.')
        label = common.int_field(data.get("label"), "label")
        source = data.get("source", "human")
        if not isinstance(source, str):
            raise BadRequest("A box's “source” must be text, e.g. “model_adjusted”.")
        return BoxIn(
            label,
            *(_coordinate(data.get(k), k) for k in "xywh"),
            attributes=attributes,
            adjusted=source == Source.MODEL_ADJUSTED,
        )


def _coordinate(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"Box field “{what}” must be a number.")
    return float(value)


def boxes_in(raw) -> list[BoxIn]:
    if not isinstance(raw, list):
        raise BadRequest("“boxes” must be a list.")
    return [BoxSerializer().to_internal_value(box) for box in raw]


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()

    def to_internal_value(self, data) -> dict:
        return {"version": common.int_field(data.get("version"), "version")}


class AnnotationsInSerializer(VersionSerializer):
    version = serializers.IntegerField(help_text="The version last read; a stale one gets 409 with the current state.")
    boxes = BoxSerializer(many=True)
    tags = serializers.ListField(child=serializers.IntegerField(), help_text="Label ids set on the whole image.")

    def to_internal_value(self, data) -> dict:
        """The keyword arguments of ``annotation_save``, checked in the order a client reads its
        request: tags' shape, version, boxes, tags' items."""
        tags = data.get("tags", [])
        if not isinstance(tags, list):
            raise BadRequest("“tags” must be a list of label ids.")
        return {
            **super().to_internal_value(data),
            "boxes": boxes_in(data.get("boxes", [])),
            "tag_label_ids": [common.int_field(t, "tags") for t in tags],
        }


def read(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """The request body (a JSON object, within the size limit) read by ``serializer_class``;
    a 400 that names the field otherwise."""
    form = serializer_class(data=common.body(request))
    form.is_valid(raise_exception=True)
    return form.validated_data


class AnnotationStateSerializer(serializers.Serializer):
    image = serializers.DictField()
    boxes = serializers.ListField(child=serializers.DictField())
    tags = serializers.ListField(child=serializers.DictField())
    suggestions = serializers.ListField(child=serializers.DictField())
    box_suggestions = serializers.ListField(
        child=serializers.DictField(),
        help_text="The detector's boxes: id, label, x, y, w, h (image pixels), score, predicted (confident),"
        " shown (worth drawing: precise enough on held-out images to save more time than it costs), decision",
    )
    model_note = serializers.CharField(allow_null=True, help_text="set while the model is near chance")
    box_note = serializers.CharField(
        allow_null=True, help_text="set while the current detector draws no box: none precise enough yet"
    )


@extend_schema(request=AnnotationsInSerializer, responses=AnnotationStateSerializer)
@api_view(["GET", "PUT"])
def image_annotations(request: Request, image_id: int) -> Response:
    """GET: the image's boxes, tags and suggestions. PUT {version, boxes, tags}: replace them
    (409 with the current state when ``version`` is stale)."""
    image = common.image_for(request, image_id, write=request.method == "PUT")
    written = None
    if request.method == "PUT":  # the answer shows the rows written, not a re-read of them
        written = annotation_save(image=image, user=request.user, **read(AnnotationsInSerializer, request))
    return Response(compose.annotation_state(image=image, written=written))  # the service left image as written


def _finish(request: Request, image_id: int, service) -> Response:
    image = common.image_for(request, image_id, write=True)
    service(image=image, user=request.user, **read(VersionSerializer, request))
    return Response(compose.annotation_state(image=image))  # the service left image as written


@extend_schema(request=VersionSerializer, responses=AnnotationStateSerializer)
@api_view(["POST"])
def image_submit(request: Request, image_id: int) -> Response:
    """Mark the image labeled: every label it does not have becomes a known negative."""
    return _finish(request, image_id, annotations.image_submit)


@extend_schema(request=VersionSerializer, responses=AnnotationStateSerializer)
@api_view(["POST"])
def image_skip(request: Request, image_id: int) -> Response:
    return _finish(request, image_id, annotations.image_skip)


@extend_schema(request=None, responses=AnnotationStateSerializer)
@api_view(["POST"])
def image_review(request: Request, image_id: int) -> Response:
    """{"version": n, "decision": "accept", "boxes"?: [...]} (with boxes: the reviewer's fixes, saved
    with the verdict), {"version": n, "decision": "reject", "comment": "..."}, or {"decision": "skip"}
    (let go of it for now) (reviewers and admins; 409 when the image changed since it was opened)."""
    image = common.image_for(request, image_id, write=True, roles=REVIEW_ROLES)
    data = common.body(request)
    decision = data.get("decision")
    if decision == "skip":
        reviews.review_skip(image=image, user=request.user)
        return Response(compose.annotation_state(image=image))
    version = common.int_field(data.get("version"), "version")
    if decision == "accept":
        boxes = boxes_in(data["boxes"]) if data.get("boxes") is not None else None
        reviews.review_accept(image=image, user=request.user, version=version, boxes=boxes)
    elif decision == "reject":
        comment = data.get("comment", "")
        if not isinstance(comment, str):
            raise BadRequest("“comment” must be text.")
        reviews.review_reject(image=image, user=request.user, version=version, comment=comment)
    else:
        raise BadRequest("“decision” must be “accept” or “reject” (or “skip” to pass on the image for now).")
    image.refresh_from_db()
    return Response(compose.annotation_state(image=image))
