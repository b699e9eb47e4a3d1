"""A project's images: the cursor-paged list (filters, orders) and uploads (docs/api.md); the shapes
beside the view."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ADMIN_ONLY, project_for
from annotator.models import ImageStatus
from annotator.orders import LIST_ORDERS
from annotator.services.images import images_import, import_limits
from annotator.sources import ImageSource, Rejection, sources_from_zip
from twinlabel.web import compose
from twinlabel.web.links import url_template
from twinlabel.web.api import common
from twinlabel.web.api.errors import BadRequest, TooLarge


# What a model order's score is called in each row of the list.
SCORE_NAMES = {
    "uncertain": "uncertainty",
    "mistakes": "mistake_score",
    "diverse": "rank_score",
    "hybrid": "rank_score",
    "rare": "rank_score",
}


class ImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ImageStatus.choices)
    version = serializers.IntegerField()
    file = serializers.CharField()
    thumbnail = serializers.CharField()


class ImagePageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = ImageSerializer(many=True)


class UploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField())


def image_dict(row: dict, urls: tuple[str, str], score: str = "uncertainty") -> dict:
    """One row of the list; ``urls``: the file and thumbnail URL templates (``{id}``), reversed once a page."""
    image_id = row["id"]
    return {
        "id": image_id,
        "name": row["original_name"],
        "width": row["width"],
        "height": row["height"],
        "status": row["status"],
        "version": row["version"],
        "file": urls[0].replace("{id}", str(image_id)),
        "thumbnail": urls[1].replace("{id}", str(image_id)),
        **({score: row["score"]} if "score" in row else {}),
    }


@extend_schema(
    parameters=[
        OpenApiParameter("status", enum=ImageStatus.values),
        OpenApiParameter("label", int, description="Images a person gave this label (box or tag)"),
        OpenApiParameter("suggested", int, description="Images the current model suggests this label for"),
        OpenApiParameter(
            "order",
            enum=list(LIST_ORDERS),
            description="id (default); uncertain: the model's least certain first; diverse: greedy k-center on the "
            "embeddings; hybrid: uncertain and diverse; mistakes: submitted images whose labels the model doubts most; rare: likeliest to hold a label with few positives",
        ),
        OpenApiParameter("name", str, description="Images uploaded under exactly this file name"),
        OpenApiParameter("cursor", str),
        OpenApiParameter("limit", int),
    ],
    request={"multipart/form-data": UploadSerializer},
    responses=ImagePageSerializer,
)
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser, FormParser, JSONParser])
def project_images(request: Request, project_id: int) -> Response:
    """GET: a page of images (cursor pagination; follow ``next``). POST multipart ``files`` (admin):
    upload images; the answer lists what was imported, what was a duplicate and what was refused."""
    if request.method == "POST":
        return _upload(request, project_id)
    project, _ = project_for(user=request.user, project_id=project_id)
    status = request.query_params.get("status") or None
    if status and status not in ImageStatus.values:
        raise BadRequest(f"Unknown status “{status}”; use one of {', '.join(ImageStatus.values)}.")
    order = request.query_params.get("order") or "id"
    if order not in LIST_ORDERS:
        raise BadRequest(f"Unknown order “{order}”; use one of {', '.join(LIST_ORDERS)}.")
    limit = common.optional_int(request, "limit") or 100
    page = compose.image_list(
        project_id=project.id,
        status=status,
        human_label=common.optional_int(request, "label"),
        suggested_label=common.optional_int(request, "suggested"),
        order=order,
        limit=min(limit, 1000),
        name=request.query_params.get("name") or None,
        after=common.cursor_decode(request.query_params.get("cursor"), 1 if order == "id" else 2),
    )
    urls = (url_template("image_file", image_id="{id}"), url_template("image_thumbnail", image_id="{id}"))
    return Response(
        {
            "next": common.next_url(request, page.next_key),
            "results": [image_dict(r, urls, SCORE_NAMES.get(order, "score")) for r in page.rows],
        }
    )


def _upload(request: Request, project_id: int) -> Response:
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > settings.UPLOAD_MAX_BYTES_PER_REQUEST:  # before parsing anything
        raise TooLarge(
            f"The upload is {int(length) / 1e6:,.0f} MB; one request may carry at most "
            f"{settings.UPLOAD_MAX_BYTES_PER_REQUEST / 1e6:,.0f} MB. Send the files in smaller batches."
        )
    files = request.FILES.getlist("files")
    if not files:
        raise BadRequest("Choose one or more image files to upload (multipart field “files”).")
    report = images_import(project=project, sources=_upload_sources(files))
    return Response(report.as_dict(), status=200 if report.imported or report.duplicates else 400)


def _upload_sources(files) -> Iterator[ImageSource | Rejection]:
    """Images, and the images inside zip files, each checked against the size limits first."""
    limit = import_limits().max_bytes
    zip_limit = settings.ZIP_MAX_TOTAL_BYTES
    for f in files:
        if f.name.lower().endswith(".zip"):
            if f.size > zip_limit:
                yield Rejection(f.name, f"the zip is {f.size / 1e6:.0f} MB; the limit is {zip_limit / 1e6:.0f} MB")
            else:
                yield from sources_from_zip(f, name=f.name, max_bytes=limit, max_total=zip_limit)
        elif f.size > limit:
            yield Rejection(f.name, f"the file is {f.size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB")
        else:
            yield ImageSource(f.name, f.read)
