"""Images from an S3-compatible bucket: a first import and later syncs of a project's bucket sources.

- The listing is streamed a page at a time (``list_objects_v2``, BUCKET_LIST_PAGE keys): each page
  goes through the upload's own service (``images_import``: validation, sha256 dedupe, thumbnails,
  quotas) and is recorded before the next page is listed, so memory holds one page, never the
  whole listing, and a job stopped half way has kept what it took in.
- An object taken in (imported, or a copy of an image already there) gets a ``BucketObject`` row
  with its ETag: a later sync skips it without reading it while its ETag is unchanged. A refused
  object (not an image, truncated, too big) gets no row and is tried again at the next sync.
- It runs on a worker (``bucket_import_run`` in annotator/services/bucket_import.py, which holds the
  run itself), one job per source at a time; the job row holds the progress and the report.
  ``manage.py import_images`` runs it in-process.
- Periodic sync is the workers' sweep (annotator/sweep.py, every SWEEP_SECONDS): a source with
  ``sync_minutes`` gets a new job once its last one is that old. No Celery beat process is needed.
- The server connects where the source says, so the endpoint must be AWS itself or one of
  BUCKET_ENDPOINTS, and the credentials are a name of BUCKET_CREDENTIALS: no secret is stored with
  the source, and none is ever shown back.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotator.models import BucketImport, BucketSource, ExportStatus, Project
from annotator.services.bucket_import import bucket_import_run
from annotator.tasks import enqueue

BUCKET_NAME = re.compile(r"\A[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]\Z")  # S3's rule: 3 to 63 characters
ACTIVE = (ExportStatus.QUEUED, ExportStatus.RUNNING)
UNSET: Any = object()


class BucketImportInProgress(Exception):
    def __init__(self, job: BucketImport):
        super().__init__(f"bucket import #{job.id} is {job.status}")
        self.job = job


def bucket_url_parse(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix)."""
    url = (url or "").strip()
    if not url.startswith("s3://"):
        raise ValidationError(f"Give the bucket as s3://bucket/prefix, not “{url[:100]}”.")
    bucket, _, prefix = url[5:].partition("/")
    if not BUCKET_NAME.match(bucket):
        raise ValidationError(
            f"“{bucket[:70]}” is not a bucket name: 3 to 63 lower-case letters, digits, dots and hyphens."
        )
    return bucket, prefix


def bucket_source_save(
    *,
    project: Project,
    url: str,
    user: AbstractBaseUser | None,
    endpoint_url: str = "",
    region: str = "",
    credentials: str = "",
    sync_minutes: int | None = UNSET,
) -> BucketSource:
    """The project's source for this bucket prefix at this endpoint, made or updated."""
    bucket, prefix = bucket_url_parse(url)
    endpoint_url = (endpoint_url or "").strip().rstrip("/")
    if endpoint_url and endpoint_url not in [e.rstrip("/") for e in settings.BUCKET_ENDPOINTS]:
        allowed = ", ".join(settings.BUCKET_ENDPOINTS) or "none (AWS S3 only)"
        raise ValidationError(
            f"The endpoint “{endpoint_url[:200]}” is not one this server may connect to. Allowed: {allowed} "
            "(the server's BUCKET_ENDPOINTS setting)."
        )
    if credentials and credentials not in settings.BUCKET_CREDENTIALS:
        raise ValidationError(
            f"No credentials are named “{credentials[:64]}” on this server (its BUCKET_CREDENTIALS setting); "
            f"known: {', '.join(sorted(settings.BUCKET_CREDENTIALS)) or 'none'}."
        )
    if sync_minutes is not UNSET and sync_minutes is not None and sync_minutes < 1:
        raise ValidationError("Sync every 1 minute or more, or leave the interval empty to sync on request only.")
    source, _ = BucketSource.objects.get_or_create(
        project=project,
        endpoint_url=endpoint_url,
        bucket=bucket,
        prefix=prefix,
        defaults={"region": region, "credentials": credentials, "created_by": user},
    )
    changes = {"region": region, "credentials": credentials}
    if sync_minutes is not UNSET:
        changes["sync_minutes"] = sync_minutes
    if any(getattr(source, k) != v for k, v in changes.items()):
        BucketSource.objects.filter(pk=source.pk).update(**changes)
        source.refresh_from_db()
    return source


def bucket_import_start(*, source: BucketSource, user: AbstractBaseUser | None, send: bool = True) -> BucketImport:
    """Queue an import (the first) or a sync (every later one) of the source; one at a time per source
    (BucketImportInProgress). ``send=False``: the caller runs it (``bucket_import_execute``)."""
    with transaction.atomic():
        # The source row's lock makes "none active, then create" one step for concurrent requests.
        BucketSource.objects.select_for_update().filter(pk=source.pk).first()
        busy = BucketImport.objects.filter(source=source, status__in=ACTIVE).first()
        if busy is not None:
            raise BucketImportInProgress(busy)
        job = BucketImport.objects.create(source=source, created_by=user)
        if send:
            enqueue(bucket_import_run, job.id, row=job)
    return job


def bucket_syncs_due(now=None) -> list[int]:
    """The sweep's step: queue a sync of every source with an interval whose last import is at least
    that old (a failed one too: it is tried again an interval later, not every tick). -> job ids."""
    now = now or timezone.now()
    started = []
    for source in BucketSource.objects.filter(sync_minutes__isnull=False).order_by("id")[:1000]:
        recent = source.imports.filter(created_at__gte=now - timedelta(minutes=source.sync_minutes))
        if recent.exists() or source.imports.filter(status__in=ACTIVE).exists():
            continue
        try:
            started.append(bucket_import_start(source=source, user=None).id)
        except BucketImportInProgress:  # another worker's sweep got there first
            continue
    return started
