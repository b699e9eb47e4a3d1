"""Backup and restore with STORAGE_BACKEND=s3, against SeaweedFS: the archive holds the image
objects (as media/, like the filesystem's files); a restore puts them back into the bucket, into a
wiped prefix or a new one, then the database; a failed upload leaves the database as it was."""

from __future__ import annotations

import hashlib
import tarfile

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError

from annotator.models import Image, Project
from tests.factories import add_images, make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _keys(client, bucket: str, prefix: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def _contents() -> dict[str, str]:
    """sha256 of every image's and thumbnail's bytes, read through the storage, by file name."""
    out = {}
    for image in Image.objects.order_by("id"):
        for name in (image.file.name, image.thumbnail.name):
            with default_storage.open(name, "rb") as handle:
                out[name] = hashlib.sha256(handle.read()).hexdigest()
    return out


def test_a_backup_holds_the_bucket_objects_and_a_restore_puts_them_back(tmp_path, s3_media, settings):
    client, bucket, location = s3_media
    project = make_project(owner=make_user("owner"))
    ids = add_images(project, 3, size=(48, 32))
    before, keys = _contents(), _keys(client, bucket, location + "/")
    assert len(keys) == 6 and all(
        Image.objects.get(pk=i).sha256 == before[Image.objects.get(pk=i).file.name] for i in ids
    )
    archive = tmp_path / "backup.tar.gz"
    call_command("backup", str(archive))
    with tarfile.open(archive) as tar:
        media = {
            m.name[len("media/") :]: tar.extractfile(m).read() for m in tar.getmembers() if m.name.startswith("media/")
        }
        manifest = tar.extractfile("manifest.json").read().decode()
    assert {f"{location}/{name}" for name in media} == keys and '"media_storage": "s3"' in manifest
    assert {name: hashlib.sha256(data).hexdigest() for name, data in media.items()} == before

    # Lose everything: the rows and the objects.
    call_command("flush", interactive=False, verbosity=0)
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert not _keys(client, bucket, location + "/")
    call_command("restore", str(archive))
    assert _keys(client, bucket, location + "/") == keys and _contents() == before
    assert Project.objects.get().images.count() == 3


def test_a_restore_onto_another_prefix_and_from_a_filesystem_backup(tmp_path, s3_media, settings, media_root):
    client, bucket, location = s3_media
    storages = settings.STORAGES
    # A filesystem installation's backup ...
    settings.STORAGES = {**storages, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    add_images(make_project(owner=make_user("owner")), 2, size=(40, 30))
    before = _contents()
    archive = tmp_path / "fs.tar.gz"
    call_command("backup", str(archive))
    # ... restored into a new S3 installation (an empty prefix).
    settings.STORAGES = {
        **storages,
        "default": {
            **storages["default"],
            "OPTIONS": {**storages["default"]["OPTIONS"], "location": location + "-new"},
        },
    }
    call_command("restore", str(archive), force=True)
    assert len(_keys(client, bucket, location + "-new/")) == 4 and _contents() == before


def test_a_failed_upload_leaves_the_database_as_it_was(tmp_path, s3_media, monkeypatch):
    project = make_project(owner=make_user("owner"), name="Kept")
    add_images(project, 1, size=(40, 30))
    archive = tmp_path / "backup.tar.gz"
    call_command("backup", str(archive))
    Project.objects.filter(pk=project.pk).update(name="Changed since")

    def refuse(*args, **kwargs):
        raise OSError("the bucket is read-only")

    monkeypatch.setattr(default_storage.bucket, "upload_file", refuse)
    with pytest.raises(CommandError, match="Could not put .* back into the bucket"):
        call_command("restore", str(archive), force=True)
    assert Project.objects.get().name == "Changed since"
