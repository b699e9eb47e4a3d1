"""Images from an S3-compatible bucket: a first import and later syncs of a project's bucket sources.

- The listing is streamed a page at a time (``list_objects_v2``, BUCKET_LIST_PAGE keys): each page
  goes through the upload's own service (``images_import``: validation, sha256 dedupe, thumbnails,
  quotas) and is recorded before the next page is listed, so memory holds one page, never the
  whole listing, and a job stopped half way has kept what it took in.
- An object taken in (imported, or a copy of an image already there) gets a ``BucketObject`` row
  with its ETag: a later sync skips it without reading it while its ETag is unchanged. A refused
  object (not an image, truncated, too big) gets no row and is tried again at the next sync.
- It runs on a worker (``annotator.tasks.bucket_import_run``), one job per source at a time; the
  job row holds the progress and the report. ``manage.py import_images`` runs it in-process.
- Periodic sync is the workers' sweep (annotator/sweep.py, every SWEEP_SECONDS): a source with
  ``sync_minutes`` gets a new job once its last one is that old. No Celery beat process is needed.
- The server connects where the source says, so the endpoint must be AWS itself or one of
  BUCKET_ENDPOINTS, and the credentials are a name of BUCKET_CREDENTIALS: no secret is stored with
  the source, and none is ever shown back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotator.models import BucketImport, BucketObject, BucketOutcome, BucketSource, ExportStatus, Project
from annotator.services.images import ImportReport, images_import, import_limits
from annotator.sources import ImageSource, Rejection, is_image_name
from annotator.tasks import bucket_import_run, enqueue

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


def bucket_import_execute(*, job_id: int, on_progress=None) -> None:
    """Claim the queued job (a second delivery finds it taken and returns), then list, import and
    record the source's objects a page at a time. Running a finished sync again changes nothing."""
    if not BucketImport.objects.filter(pk=job_id, status=ExportStatus.QUEUED).update(
        status=ExportStatus.RUNNING, started_at=timezone.now(), error=""
    ):
        return
    job = BucketImport.objects.select_related("source__project").get(pk=job_id)
    try:
        client = _client(job.source)
        for page in _pages(client, job.source):
            _import_page(job, client, page)
            BucketImport.objects.filter(pk=job.id).update(**_counts(job))
            if on_progress:
                on_progress(job)
    except Exception as error:  # the job must end either way; the worker log has the traceback
        BucketImport.objects.filter(pk=job.id).update(
            **_counts(job), status=ExportStatus.FAILED, error=_describe(error), finished_at=timezone.now()
        )
        raise
    now = timezone.now()
    BucketImport.objects.filter(pk=job.id).update(**_counts(job), status=ExportStatus.SUCCEEDED, finished_at=now)
    BucketSource.objects.filter(pk=job.source_id).update(last_synced_at=now)


def _counts(job: BucketImport) -> dict:
    fields = ("listed", "imported", "duplicates", "skipped", "ignored", "refused", "refusals")
    return {name: getattr(job, name) for name in fields}


def _describe(error: Exception) -> str:
    """What went wrong, for the admin: boto's errors name the bucket and the code, never a secret."""
    if type(error).__name__ == "NoCredentialsError":
        return "No credentials: name a credential set of BUCKET_CREDENTIALS, or give the workers AWS_* variables."
    return f"{type(error).__name__}: {error}"[:2000]


def _client(source: BucketSource):
    try:
        import boto3
        from botocore.config import Config
    except ImportError as error:
        raise ValidationError("Bucket import needs boto3 on the workers: pip install boto3") from error
    keys = settings.BUCKET_CREDENTIALS.get(source.credentials) if source.credentials else None
    return boto3.client(
        "s3",
        endpoint_url=source.endpoint_url or None,
        region_name=source.region or None,
        aws_access_key_id=keys[0] if keys else None,
        aws_secret_access_key=keys[1] if keys else None,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60),
    )


def _pages(client, source: BucketSource) -> Iterator[list[dict]]:
    """The listing, one page of objects at a time (the paginator follows the continuation tokens)."""
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(
        Bucket=source.bucket, Prefix=source.prefix, PaginationConfig={"PageSize": settings.BUCKET_LIST_PAGE}
    )
    for page in pages:
        yield page.get("Contents", [])


def _read(client, bucket: str, key: str) -> bytes:
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:  # botocore's errors: the import service reports an OSError as unreadable
        raise OSError(f"{type(error).__name__}: {error}") from error


def _import_page(job: BucketImport, client, page: list[dict]) -> None:
    source, max_bytes = job.source, import_limits().max_bytes
    known = dict(
        BucketObject.objects.filter(source=source, key__in=[o["Key"] for o in page]).values_list("key", "etag")
    )
    sources: list[ImageSource | Rejection] = []
    etags: dict[str, tuple[str, str]] = {}  # the name the import reports -> (key, ETag)
    job.listed += len(page)
    for entry in page:
        key, etag = entry["Key"], entry.get("ETag", "").strip('"')
        if key.endswith("/") or not is_image_name(key):
            job.ignored += 1
        elif known.get(key) == etag:
            job.skipped += 1
        elif entry.get("Size", 0) > max_bytes:
            sources.append(
                Rejection(key, f"the object is {entry['Size'] / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB")
            )
        else:
            sources.append(ImageSource(key, partial(_read, client, source.bucket, key)))
            etags[key] = etags[key[-255:]] = (key, etag)
    if sources:
        _record(job, images_import(project=source.project, sources=sources), etags)


def _record(job: BucketImport, report: ImportReport, etags: dict[str, tuple[str, str]]) -> None:
    taken = [(item, BucketOutcome.IMPORTED) for item in report.imported]
    taken += [(item, BucketOutcome.DUPLICATE) for item in report.duplicates]
    rows = {}
    for item, outcome in taken:
        key, etag = etags[item.name]
        rows[key] = BucketObject(source=job.source, key=key, etag=etag, image_id=item.image_id, outcome=outcome)
    with transaction.atomic():  # an object whose ETag changed is replaced
        BucketObject.objects.filter(source=job.source, key__in=list(rows)).delete()
        BucketObject.objects.bulk_create(rows.values())
    job.imported += len(report.imported)
    job.duplicates += len(report.duplicates)
    job.refused += len(report.rejected)
    room = settings.BUCKET_REPORT_REFUSALS - len(job.refusals)
    job.refusals = job.refusals + [{"key": r.name, "reason": r.reason} for r in report.rejected[: max(0, room)]]


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


def bucket_imports_resend() -> list[int]:
    """Queued jobs the broker never took (or lost) are sent again, as export jobs are."""
    from annotator.sweep import claim_send, resend_due
    from annotator.tasks import send_now

    sent = []
    for job in resend_due(BucketImport).order_by("id")[:100]:
        if claim_send(job) and send_now(bucket_import_run, job.id, row=job):
            sent.append(job.id)
    return sent
