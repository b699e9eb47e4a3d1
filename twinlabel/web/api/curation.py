"""Curation with the embeddings (docs/api.md): more like this."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.models import ImageStatus
from twinlabel.web import compose
from twinlabel.web.api import common
from twinlabel.web.api.errors import BadRequest
from twinlabel.web.api.images import ImageSerializer, image_dict
from twinlabel.web.links import url_template

SIMILAR_MAX = 200


class SimilarImageSerializer(ImageSerializer):
    similarity = serializers.FloatField()  # cosine similarity of the embeddings, 1 = the same direction


class SimilarSerializer(serializers.Serializer):
    run = serializers.IntegerField(allow_null=True)  # the pretraining whose embeddings were compared
    note = serializers.CharField(allow_null=True)  # why there are no results, when there are none to have
    results = SimilarImageSerializer(many=True)


@extend_schema(
    parameters=[
        OpenApiParameter("k", int, description=f"How many (default 20, at most {SIMILAR_MAX})"),
        OpenApiParameter("status", enum=ImageStatus.values),
        OpenApiParameter("label", int, description="Only images a person gave this label (box or tag)"),
    ],
    responses=SimilarSerializer,
)
@api_view(["GET"])
def image_similar(request: Request, image_id: int) -> Response:
    """More like this: the images nearest this one by cosine similarity of the current backbone's
    embeddings, most similar first (exact search)."""
    image = common.image_for(request, image_id, write=False)
    k = common.optional_int(request, "k")
    k = 20 if k is None else k
    if not 1 <= k <= SIMILAR_MAX:
        raise BadRequest(f"“k” must be between 1 and {SIMILAR_MAX}.")
    status = request.query_params.get("status") or None
    if status and status not in ImageStatus.values:
        raise BadRequest(f"Unknown status “{status}”; use one of {', '.join(ImageStatus.values)}.")
    found = compose.similar_images(
        project_id=image.project_id,
        image_id=image.id,
        k=k,
        status=status,
        human_label=common.optional_int(request, "label"),
    )
    urls = (url_template("image_file", image_id="{id}"), url_template("image_thumbnail", image_id="{id}"))
    results = [{**image_dict(row, urls), "similarity": row["similarity"]} for row in found["results"]]
    return Response({"run": found["run"], "note": found["note"], "results": results})
