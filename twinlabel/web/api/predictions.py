"""External predictions: a model of the team's own (YOLO, a classifier) pushes its scores, stored as a
run of kind ``external`` whose suggestions people accept or reject like the probe's (labeling/external.py)."""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ADMIN_ONLY, project_for
from annotator.formats.predictions import FORMATS
from labeling.external import predictions_import
from twinlabel.web.api import common
from twinlabel.web.api.errors import BadRequest


class PredictionsUploadSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(FORMATS))
    files = serializers.ListField(
        child=serializers.FileField(), help_text="json or coco: one file; yolo: the label files and data.yaml"
    )
    model_version = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Which model made them (a JSON file may carry it)"
    )
    tags_from_boxes = serializers.BooleanField(
        required=False, default=False, help_text="Also score each image's labels by its best box of each"
    )
    activate = serializers.BooleanField(
        required=False, default=True, help_text="Make these the project's current suggestions (default)"
    )


class PredictionsJsonSerializer(serializers.Serializer):
    model_version = serializers.CharField(max_length=200)
    predictions = serializers.ListField(
        child=serializers.DictField(),
        help_text="[{image_id | sha256 | file_name, tags: [{label, score}], boxes: [{label, bbox, score}]}]",
    )
    tags_from_boxes = serializers.BooleanField(required=False, default=False)
    activate = serializers.BooleanField(required=False, default=True)


class PredictionsReportSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    model_version = serializers.CharField()
    images = serializers.IntegerField(help_text="Entries matched to an image")
    evaluated_images = serializers.IntegerField(help_text="Of them submitted: what the thresholds are judged on")
    suggestions = serializers.IntegerField()
    confident = serializers.IntegerField()
    tag_predictions = serializers.IntegerField()
    box_predictions = serializers.IntegerField()
    boxes_stored = serializers.IntegerField(help_text="Box suggestions stored for the images not submitted yet")
    boxes_evaluated_images = serializers.IntegerField(help_text="Submitted images the box thresholds are judged on")
    boxes_confident = serializers.IntegerField(help_text="Of the stored boxes, pre-ticked (at or above threshold)")
    boxes_note = serializers.CharField(allow_blank=True)
    unmatched = serializers.ListField(child=serializers.CharField(), help_text="The first 50 entries matching no image")
    unmatched_count = serializers.IntegerField()
    labels = serializers.ListField(child=serializers.DictField())
    activated = serializers.BooleanField()


@extend_schema(
    request={"multipart/form-data": PredictionsUploadSerializer, "application/json": PredictionsJsonSerializer},
    responses={201: PredictionsReportSerializer},
)
@api_view(["POST"])
@parser_classes([MultiPartParser, JSONParser])
def project_predictions(request: Request, project_id: int) -> Response:
    """Import another model's predictions (admin): multipart ``format`` (json|coco|yolo), ``files`` and
    ``model_version``, or a JSON body in the json format. Matched by image id, sha256 or an unambiguous
    file name; all or nothing; the answer reports what did not match."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    if request.content_type.startswith("multipart/"):
        form = PredictionsUploadSerializer(data={**request.data.dict(), "files": request.FILES.getlist("files")})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        files = [(f.name, f.read()) for f in data["files"]]
        fmt = data["format"]
    else:
        doc = common.body(request)
        for flag in ("tags_from_boxes", "activate"):
            if not isinstance(doc.get(flag, False), bool):
                raise BadRequest(f"“{flag}” must be true or false.")
        data = {"tags_from_boxes": doc.get("tags_from_boxes", False), "activate": doc.get("activate", True)}
        files, fmt = [("predictions.json", json.dumps(doc).encode())], "json"
    report = predictions_import(
        project=project,
        user=request.user,
        fmt=fmt,
        files=files,
        model_version=data.get("model_version", ""),
        tags_from_boxes=data["tags_from_boxes"],
        activate=data["activate"],
    )
    return Response(report.as_dict(), status=201)
