"""A bucket import's run on a worker (annotator/services/buckets.py queues it and says how a sync
works): claim the job, list the source a page at a time, import each page through the upload's
service, record what was taken in, and keep the job's counts up to date.

The Celery task is defined here, beside the code it runs, rather than in annotator/tasks.py: the
services import annotator.tasks (``enqueue``), so annotator.tasks must not import the services (the
acyclic import contract). CELERY_IMPORTS (settings) makes every worker load this module.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotator.models import BucketImport, BucketObject, BucketOutcome, BucketSource, ExportStatus
from annotator.services.images import ImportReport, images_import, import_limits
from annotator.sources import ImageSource, Rejection, is_image_name


# ignore_result: nobody reads it; the job row holds the outcome.
@shared_task(name="annotator.tasks.bucket_import_run", ignore_result=True)
def bucket_import_run(job_id: int) -> None:
    bucket_import_execute(job_id=job_id)


def bucket_import_execute(*, job_id: int, on_progress=None) -> None:
    """Claim the queued job (a second delivery finds it taken and returns), then list, import and
    record the source's objects a page at a time. Running a finished sync again changes nothing."""
    from annotator.jobs import job_claim, JobHeartbeat

    if not job_claim(BucketImport, job_id, started_at=timezone.now()):
        return
    job = BucketImport.objects.select_related("source__project").get(pk=job_id)
    beat = JobHeartbeat(BucketImport, job_id)
    try:
        client = _client(job.source)
        for page in _pages(client, job.source):
            _import_page(job, client, page, beat=beat)
            BucketImport.objects.filter(pk=job.id).update(**_counts(job), heartbeat_at=timezone.now())
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


def _import_page(job: BucketImport, client, page: list[dict], *, beat=None) -> None:
    source, max_bytes = job.source, import_limits().max_bytes
    known = dict(
        BucketObject.objects.filter(source=source, key__in=[o["Key"] for o in page]).values_list("key", "etag")
    )
    sources: list[str | Rejection] = []  # keys to read, or refused unread
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
            sources.append(key)
            etags[key] = etags[key[-255:]] = (key, etag)
    if sources:
        read = _read_ahead(client, source.bucket, sources, settings.BUCKET_READ_AHEAD)
        _record(job, images_import(project=source.project, sources=_beating(read, beat)), etags)


def _beating(items: Iterator, beat) -> Iterator:
    """``items``, the job's heartbeat taken as each is handed on (a page of big photos can outlast
    RUN_STALE_SECONDS)."""
    for item in items:
        if beat:
            beat()
        yield item


def _read_ahead(client, bucket: str, items: list[str | Rejection], window: int) -> Iterator[ImageSource | Rejection]:
    """The objects in order, each one's GET started up to ``window`` objects before the import asks
    for it (a request's latency, not the decode, bounds a one-at-a-time import); memory holds at most
    ``window`` objects' bytes. The client is boto3's low-level one, which threads may share."""
    with ThreadPoolExecutor(max_workers=window, thread_name_prefix="bucket-read") as pool:
        ahead: deque[tuple[str | Rejection, Future | None]] = deque()
        rest = iter(items)

        def fill() -> None:
            while len(ahead) < window and (item := next(rest, None)) is not None:
                ahead.append((item, None if isinstance(item, Rejection) else pool.submit(_read, client, bucket, item)))

        fill()
        while ahead:
            item, future = ahead.popleft()
            fill()
            if isinstance(item, Rejection) or future is None:
                yield item  # type: ignore[misc]
            else:
                yield ImageSource(item, future.result)


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
