"""Bucket import and sync (admin): start an import or a sync of an s3://bucket/prefix, poll it, list
the project's sources. No secret is ever part of an answer: a source names its credential set."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ADMIN_ONLY, project_for
from annotator.models import BucketImport, BucketSource
from annotator.services import buckets


class BucketImportInSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=1100, help_text="s3://bucket/prefix")
    endpoint_url = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Empty: AWS S3; else one of BUCKET_ENDPOINTS"
    )
    region = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    credentials = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64, help_text="A name of BUCKET_CREDENTIALS"
    )
    sync_minutes = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Sync every N minutes; null: on request only"
    )


class BucketImportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    source = serializers.IntegerField()
    status = serializers.CharField()
    listed = serializers.IntegerField()
    imported = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Taken in before, ETag unchanged: not read")
    ignored = serializers.IntegerField(help_text="Not images by name")
    refused = serializers.IntegerField()
    refusals = serializers.ListField(child=serializers.DictField(), help_text="The first ones: [{key, reason}]")
    error = serializers.CharField(allow_blank=True)
    poll = serializers.CharField()


class BucketSourceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    endpoint_url = serializers.CharField(allow_blank=True)
    region = serializers.CharField(allow_blank=True)
    credentials = serializers.CharField(allow_blank=True, help_text="The credential set's name, never its keys")
    sync_minutes = serializers.IntegerField(allow_null=True)
    last_synced_at = serializers.DateTimeField(allow_null=True)
    last_import = BucketImportSerializer(allow_null=True)


def import_dict(job: BucketImport) -> dict:
    fields = ("listed", "imported", "duplicates", "skipped", "ignored", "refused", "refusals", "error")
    return {
        "id": job.id,
        "url": job.source.url,
        "source": job.source_id,
        "status": job.status,
        **{name: getattr(job, name) for name in fields},
        "poll": reverse("api_bucket_import", args=[job.id]),
    }


def source_dict(source: BucketSource, last: BucketImport | None) -> dict:
    return {
        "id": source.id,
        "url": source.url,
        "endpoint_url": source.endpoint_url,
        "region": source.region,
        "credentials": source.credentials,
        "sync_minutes": source.sync_minutes,
        "last_synced_at": source.last_synced_at,
        "last_import": import_dict(last) if last else None,
    }


@extend_schema(
    request=BucketImportInSerializer,
    responses={
        200: inline_serializer(
            "BucketSources",
            fields={
                "sources": BucketSourceSerializer(many=True),
                "endpoints": serializers.ListField(child=serializers.CharField()),
                "credentials": serializers.ListField(child=serializers.CharField()),
            },
        ),
        202: BucketImportSerializer,
        409: inline_serializer(
            "BucketImportInProgress", fields={"error": serializers.CharField(), "job": BucketImportSerializer()}
        ),
    },
)
@api_view(["GET", "POST"])
def project_bucket_imports(request: Request, project_id: int) -> Response:
    """GET: the project's bucket sources, each with its last import, and the endpoints and credential
    names this server allows. POST {url: "s3://bucket/prefix", endpoint_url, region, credentials,
    sync_minutes}: import the prefix's new objects (the first time: all of them) on a worker; 202 and
    a job to poll; 409 while an import of the same source is under way. Admins only."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    if request.method == "GET":
        sources = list(BucketSource.objects.filter(project=project))
        last = {}
        for job in BucketImport.objects.filter(source__in=sources).select_related("source").order_by("source", "-id"):
            last.setdefault(job.source_id, job)
        return Response(
            {
                "sources": [source_dict(s, last.get(s.id)) for s in sources],
                "endpoints": settings.BUCKET_ENDPOINTS,
                "credentials": sorted(settings.BUCKET_CREDENTIALS),
            }
        )
    form = BucketImportInSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    data = dict(form.validated_data)
    if "sync_minutes" not in data:
        data["sync_minutes"] = buckets.UNSET
    source = buckets.bucket_source_save(project=project, user=request.user, **data)
    try:
        job = buckets.bucket_import_start(source=source, user=request.user)
    except buckets.BucketImportInProgress as busy:
        return Response(
            {"error": f"An import of {source.url} is already under way; poll it.", "job": import_dict(busy.job)},
            status=409,
        )
    return Response(import_dict(job), status=202)


@extend_schema(responses=BucketImportSerializer)
@api_view(["GET"])
def bucket_import(request: Request, job_id: int) -> Response:
    job = get_object_or_404(BucketImport.objects.select_related("source"), pk=job_id)
    project_for(user=request.user, project_id=job.source.project_id, roles=ADMIN_ONLY)
    return Response(import_dict(job))
