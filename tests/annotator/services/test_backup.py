"""Backup and restore (docs/backup.md): back up a small project, wipe everything, restore, compare."""

import tarfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotator.services import reviews
from annotator.services.annotations import image_submit
from annotator.models import Box, Image, ImageTag, LabelClass, Membership, Project, Review, Role
from labeling.models import RunKind, TrainingRun
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _snapshot(media_root):
    return {
        "projects": list(Project.objects.values_list("name", "created_by__username")),
        "labels": list(LabelClass.objects.values_list("project__name", "name", "color", "hotkey").order_by("id")),
        "members": sorted(Membership.objects.values_list("project__name", "user__username", "role")),
        "images": list(
            Image.objects.values_list(
                "original_name",
                "file",
                "thumbnail",
                "sha256",
                "status",
                "review_status",
                "version",
                "submitted_by__username",
            ).order_by("id")
        ),
        "boxes": list(
            Box.objects.values_list("image__sha256", "label__name", "x", "y", "w", "h", "author__username").order_by(
                "id"
            )
        ),
        "tags": list(ImageTag.objects.values_list("image__sha256", "label__name", "source").order_by("id")),
        "reviews": list(Review.objects.values_list("image__sha256", "decision", "comment", "reviewer__username")),
        "runs": list(TrainingRun.objects.values_list("kind", "status", "config")),
        "files": {
            p.relative_to(media_root).as_posix(): p.read_bytes() for p in sorted(media_root.rglob("*")) if p.is_file()
        },
    }


def _world():
    owner, annie, rev = make_user("owner"), make_user("annie"), make_user("rev")
    project = make_project(owner=owner)
    add_member(project, annie, Role.ANNOTATOR)
    add_member(project, rev, Role.REVIEWER)
    ids = add_images(project, 4, size=(40, 30))
    cat = project.labels.get(name="cat")
    for image_id in ids[:2]:
        image = Image.objects.get(pk=image_id)
        Box.objects.create(image=image, label=cat, x=1.5, y=2, w=10, h=12.25, author=annie)
        ImageTag.objects.create(image=image, label=cat, author=annie)
        image_submit(image=image, user=annie, version=image.version)
    first = Image.objects.get(pk=ids[0])
    reviews.review_reject(image=first, user=rev, version=first.version, comment="Too loose.")
    TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, config={"epochs": 3}, status="succeeded")
    make_project(owner=make_user("other"), labels=("car",), name="Cars")


def test_a_backup_restores_the_same_rows_and_files_after_a_wipe(tmp_path, media_root):
    _world()
    before = _snapshot(media_root)
    assert len(before["files"]) == 8 and before["reviews"]
    archive = tmp_path / "backup.tar.gz"
    call_command("backup", str(archive))
    names = tarfile.open(archive).getnames()
    assert {"manifest.json", "db.json"} <= set(names) and sum(n.startswith("media/") for n in names) == 8

    call_command("flush", interactive=False, verbosity=0)
    for path in media_root.rglob("*"):
        if path.is_file():
            path.unlink()
    assert not Project.objects.exists()

    call_command("restore", str(archive))
    assert _snapshot(media_root) == before
    # People can log in with their passwords again, and the restored rows take new ids cleanly.
    from django.contrib.auth import authenticate

    assert authenticate(username="annie", password="pw-annie") is not None
    assert add_images(Project.objects.get(name="Pets"), 1, size=(41, 30))


def test_restore_refuses_to_overwrite_projects_without_force_and_changes_nothing(tmp_path, media_root):
    _world()
    archive = tmp_path / "backup.tar.gz"
    call_command("backup", str(archive))
    Project.objects.filter(name="Cars").delete()
    before = _snapshot(media_root)
    with pytest.raises(CommandError, match="already holds projects"):
        call_command("restore", str(archive))
    assert _snapshot(media_root) == before
    call_command("restore", str(archive), force=True)
    assert Project.objects.filter(name="Cars").exists()


def test_restore_refuses_archives_that_are_not_backups_or_escape(tmp_path, media_root):
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload.txt"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as archive:
        archive.add(payload, "../../escaped.txt")
    with pytest.raises(CommandError, match="not a readable backup archive"):
        call_command("restore", str(evil))
    assert not (tmp_path.parent.parent / "escaped.txt").exists()
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    with pytest.raises(CommandError, match="not a readable backup archive"):
        call_command("restore", str(junk))
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(CommandError, match="no manifest.json"):
        call_command("restore", str(empty))


@pytest.mark.parametrize("kind", ["relative symlink", "absolute symlink", "hard link"])
def test_restore_refuses_every_link_even_one_inside_the_archive(tmp_path, media_root, kind):
    """Issue 14, item 13: ``media/up -> ..`` stays inside the folder, yet once restored the image
    views would serve files beside MEDIA_ROOT (db.sqlite3, secret_key)."""
    _world()
    good = tmp_path / "good.tar.gz"
    call_command("backup", str(good))
    before = _snapshot(media_root)
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(good) as source, tarfile.open(evil, "w:gz") as archive:
        for member in source.getmembers():
            archive.addfile(member, source.extractfile(member) if member.isfile() else None)
        link = tarfile.TarInfo("media/up")
        if kind == "hard link":
            link.type, link.linkname = tarfile.LNKTYPE, "manifest.json"
        else:
            link.type, link.linkname = tarfile.SYMTYPE, (".." if kind == "relative symlink" else "/etc")
        archive.addfile(link)
    with pytest.raises(CommandError, match="holds links or special files \\(media/up\\)"):
        call_command("restore", str(evil), force=True)
    assert _snapshot(media_root) == before
    assert not (media_root / "up").exists()


def test_a_backup_that_fills_the_disk_says_so_and_leaves_no_partial_archive(tmp_path, media_root):
    """The kernel's own ENOSPC: /dev/full in place of the archive being written."""
    _world()
    archive = tmp_path / "backup.tar.gz"
    partial = archive.with_name(archive.name + ".partial")
    partial.symlink_to("/dev/full")
    with pytest.raises(CommandError, match="The disk filled up while the backup was written"):
        call_command("backup", str(archive))
    assert not archive.exists() and not partial.is_symlink() and not partial.exists()
