"""Export and import endpoints. An export streams (flat memory) unless it is big or asked to run in
the background: then a Celery job writes it to storage and it ends as a permission-checked download."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotator import exports
from annotator.access import ADMIN_ONLY, project_for
from annotator.formats import registry
from annotator.models import ExportJob, ExportStatus, Image, ImageStatus
from annotator.services import exchange


class ExportParamsSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=[writer.name for writer in registry.writers()])
    status = serializers.ChoiceField(
        choices=[*ImageStatus.values, "all"],
        required=False,
        default="submitted",
        help_text="Only images with this status (default: submitted); “all” for every "
        "image, its status written in COCO and JSON.",
    )
    predictions = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        help_text="Include suggestions with probability ≥ this, as predictions.",
    )
    images = serializers.BooleanField(
        required=False, default=False, help_text="YOLO: put the image files in the zip too (images/ beside labels/)."
    )
    background = serializers.BooleanField(
        required=False, default=False, help_text="Run as a job that ends as a download (automatic for big projects)."
    )


class ImportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=[reader.name for reader in registry.readers()])
    files = serializers.ListField(child=serializers.FileField())


class ExportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    options = serializers.DictField()
    size_bytes = serializers.IntegerField()
    error = serializers.CharField()
    download = serializers.CharField(allow_null=True)


def job_dict(job: ExportJob) -> dict:
    done = job.status == ExportStatus.SUCCEEDED
    return {
        "id": job.id,
        "status": job.status,
        "options": job.options,
        "size_bytes": job.size_bytes,
        "error": job.error,
        "url": reverse("api_export_job", args=[job.id]),
        "download": reverse("api_export_download", args=[job.id]) if done else None,
    }


@extend_schema(
    parameters=[ExportParamsSerializer],
    responses={
        (200, "application/octet-stream"): OpenApiResponse(description="The export file"),
        202: ExportJobSerializer,
        409: inline_serializer(
            "ExportInProgress", fields={"error": serializers.CharField(), "job": ExportJobSerializer()}
        ),
    },
)
@api_view(["GET"])
def project_export(request: Request, project_id: int):
    """?format=coco|voc|yolo|csv|json [&status=submitted (default)|all|unlabeled|...] [&predictions=0.5]
    [&background=1].
    Streams the file; a project over EXPORT_STREAM_MAX_IMAGES images (or background=1) gets 202
    and an export job to poll, which ends with a ``download`` URL. Admins only (the whole project's
    annotations leave the server); one background export per project at a time (409)."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    params = ExportParamsSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    data = params.validated_data
    options = exports.ExportOptions(
        format=data["format"], status=data.get("status"), predictions_min=data.get("predictions"), images=data["images"]
    )
    options.check()
    images = Image.objects.filter(project=project)
    if options.status_filter:
        images = images.filter(status=options.status_filter)
    if data["background"] or images.count() > settings.EXPORT_STREAM_MAX_IMAGES:
        try:
            job = exchange.export_job_start(project=project, user=request.user, options=options)
        except exchange.ExportInProgress as busy:
            return Response(
                {
                    "error": "An export of this project is already queued or running; poll it and "
                    "download it, or wait for it to finish.",
                    "job": job_dict(busy.job),
                },
                status=409,
            )
        return Response(job_dict(job), status=202)
    response = StreamingHttpResponse(
        exports.export_stream(project=project, options=options),
        content_type=registry.get_writer(options.format).media_type,
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{exports.export_file_name(project=project, options=options)}"'
    )
    return response


@extend_schema(responses=ExportJobSerializer)
@api_view(["GET"])
def export_job(request: Request, job_id: int) -> Response:
    job = get_object_or_404(ExportJob, pk=job_id)
    project_for(user=request.user, project_id=job.project_id, roles=ADMIN_ONLY)
    return Response(job_dict(job))


@extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The export file")})
@api_view(["GET"])
def export_download(request: Request, job_id: int):
    job = get_object_or_404(ExportJob, pk=job_id)
    project_for(user=request.user, project_id=job.project_id, roles=ADMIN_ONLY)
    if job.status != ExportStatus.SUCCEEDED or not job.file:
        raise Http404("This export is not ready; poll its status.")
    options = exports.ExportOptions(**job.options)
    return FileResponse(
        job.file.open("rb"),
        as_attachment=True,
        filename=exports.export_file_name(project=job.project, options=options),
        content_type=registry.get_writer(options.format).media_type,
    )


@extend_schema(
    request={"multipart/form-data": ImportSerializer},
    responses=OpenApiResponse(description="{images, boxes, tags, labels_created, unmatched, skipped_results}"),
)
@api_view(["POST"])
@parser_classes([MultiPartParser])
def project_import(request: Request, project_id: int) -> Response:
    """Multipart ``format`` (coco|yolo|voc|labelstudio|json) and ``files``: annotations matched to the
    project's images by file name (admin). All or nothing; the answer lists what did not match."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    form = ImportSerializer(data={"format": request.data.get("format"), "files": request.FILES.getlist("files")})
    form.is_valid(raise_exception=True)
    files = [(f.name, f.read()) for f in form.validated_data["files"]]
    report = exchange.annotations_file_import(
        project=project, user=request.user, fmt=form.validated_data["format"], files=files
    )
    return Response(report.as_dict())
