"""Disk full and killed uploads (issue 14 item 5): a full image store answers 507 and leaves no file
of the batch behind; ``manage.py media_gc`` finds the files no row refers to (dry run by default),
and the workers' sweep deletes them once they are past the grace period."""

from __future__ import annotations

import errno
import io
import os
import time
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from annotator.services.media_gc import media_gc, media_gc_periodic
from annotator.models import ExportJob, Image
from tests.factories import add_images, image_bytes, make_project, make_user

pytestmark = pytest.mark.django_db


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_full_image_store_answers_507_and_keeps_no_file_of_the_batch(client, media_root):
    owner = make_user("owner")
    project = make_project(owner=owner)
    client.force_login(owner)
    save = default_storage.save
    calls = {"n": 0}

    def filling(name, content, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:  # two images (file + thumbnail) fit, the third does not
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(name, content, *args, **kwargs)

    files = [SimpleUploadedFile(f"{i}.png", image_bytes(32, 32, color=(i, 9, 9))) for i in range(3)]
    with mock.patch.object(default_storage, "save", side_effect=filling):
        response = client.post(reverse("api_project_images", args=[project.id]), {"files": files})
    assert response.status_code == 507, response.content
    assert "image store is full" in response.json()["error"]
    assert not Image.objects.exists()
    assert _files(Path(media_root)) == []


@pytest.fixture
def orphans(media_root, settings):
    """Referenced files, and orphans of every kind, all an hour and a half old; one fresh orphan."""
    project = make_project()
    add_images(project, 2)
    kept = sorted(n for pair in Image.objects.values_list("file", "thumbnail") for n in pair)
    job_file = default_storage.save(f"exports/{project.id}/1-kept.json", ContentFile(b"{}"))
    ExportJob.objects.create(project=project, status="succeeded", file=job_file)
    sha = Image.objects.first().sha256
    lost = [
        default_storage.save(f"projects/{project.id}/images/{sha[:2]}/{sha[:16]}-dead.png", ContentFile(b"x")),
        default_storage.save(f"projects/{project.id}/thumbs/ab/abababababababab-dead.jpg", ContentFile(b"x")),
        default_storage.save(f"projects/{project.id + 99}/images/00/0000000000000000-gone.png", ContentFile(b"x")),
        default_storage.save(f"exports/{project.id}/2-lost.json", ContentFile(b"{}")),
    ]
    old = time.time() - 5400
    for name in kept + [job_file] + lost:
        os.utime(default_storage.path(name), (old, old))
    fresh = default_storage.save(f"projects/{project.id}/images/cd/cdcdcdcdcdcdcdcd-inflight.png", ContentFile(b"x"))
    return kept + [job_file], sorted(lost), fresh


def test_it_lists_the_orphans_and_deletes_nothing_by_default(orphans, media_root):
    kept, lost, fresh = orphans
    before = _files(Path(media_root))
    out, err = io.StringIO(), io.StringIO()
    call_command("media_gc", stdout=out, stderr=err)
    assert sorted(out.getvalue().split()) == lost
    assert "4 unreferenced files" in err.getvalue() and "1 more are younger" in err.getvalue()
    assert _files(Path(media_root)) == before


def test_delete_removes_only_old_orphans(orphans):
    kept, lost, fresh = orphans
    call_command("media_gc", "--delete", stdout=io.StringIO(), stderr=io.StringIO())
    assert not any(default_storage.exists(n) for n in lost)
    assert all(default_storage.exists(n) for n in kept) and default_storage.exists(fresh)


def test_the_sweep_deletes_them_at_most_every_period(orphans, settings):
    kept, lost, fresh = orphans
    settings.MEDIA_GC_SECONDS = 3600
    with mock.patch("annotator.services.media_gc._last_run", -1e12):
        assert media_gc_periodic()["deleted"] == 4
        assert media_gc_periodic() is None  # not again within the period
    assert all(default_storage.exists(n) for n in kept) and default_storage.exists(fresh)
    assert media_gc(grace_seconds=0).orphans == [fresh]


def test_the_import_command_says_the_store_is_full(tmp_path, media_root):
    from django.core.management import CommandError

    project = make_project()
    (tmp_path / "a.png").write_bytes(image_bytes(20, 20))
    with (
        mock.patch.object(default_storage, "save", side_effect=OSError(errno.ENOSPC, "No space left on device")),
        pytest.raises(CommandError, match="image store is full"),
    ):
        call_command("import_images", str(project.id), str(tmp_path / "a.png"), "--no-progress", stdout=io.StringIO())
    assert not Image.objects.exists() and _files(Path(media_root)) == []
