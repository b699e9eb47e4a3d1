"""Backup and restore: the database as Django fixtures (the same on SQLite and PostgreSQL) plus the
media files, in one .tar.gz. See docs/backup.md.

Restore is all or nothing: the database is replaced inside one transaction, and the media folder is
swapped in only when the data loaded; on any error both stay as they were.

With media on S3 (STORAGE_BACKEND=s3) the archive holds the objects under the storage's location
(AWS_LOCATION) as media/ too, streamed from the bucket one object at a time, so an archive restores
on either backend. A restore onto S3 puts the archive's objects back first, under the same names,
and only then replaces the database: a failed upload leaves the database as it was (the objects put
so far are the archive's own, unreferenced until a restore succeeds: media_gc removes them). Objects
in the bucket that the archive does not hold are left there, not deleted (a bucket may be shared);
unreferenced ones are media_gc's to delete after its grace period.
"""

from __future__ import annotations

import json
import mimetypes
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

FORMAT = 1
# Rebuilt by migrate (content types, permissions) or not worth keeping (sessions: everyone logs in again).
EXCLUDED = ["contenttypes", "auth.permission", "sessions"]


class BackupError(Exception):
    """The archive cannot be restored here; the message says why."""


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    rows: dict[str, int]
    files: int


def backup_write(*, path: Path, with_models: bool = False) -> BackupSummary:
    rows = {
        m._meta.label: m.objects.count() for m in apps.get_models() if m._meta.app_label in ("annotator", "labeling")
    }
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "db.json"
        # dumpdata streams rows with an iterator, so a large project is not held in memory.
        call_command(
            "dumpdata", natural_foreign=True, natural_primary=True, exclude=EXCLUDED, output=str(dump), verbosity=0
        )
        manifest = {
            "format": FORMAT,
            "created_at": timezone.now().isoformat(),
            "database": connection.vendor,
            "migrations": _latest_migrations(),
            "rows": rows,
            "with_models": with_models,
            "media_storage": "filesystem" if _media_on_disk() else "s3",
        }
        (Path(tmp) / "manifest.json").write_text(json.dumps(manifest, indent=2))
        partial = path.with_name(path.name + ".partial")
        files = 0
        try:
            with tarfile.open(partial, "w:gz") as archive:
                archive.add(Path(tmp) / "manifest.json", "manifest.json")
                archive.add(dump, "db.json")
                for folder, prefix in _folders(with_models):
                    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                        archive.add(file, f"{prefix}/{file.relative_to(folder).as_posix()}")
                        files += 1
                if not _media_on_disk():
                    files += _add_bucket_objects(archive)
            partial.replace(path)  # a backup that stopped half-way never looks complete
        finally:  # and one that failed (a full disk) does not keep the space it took
            partial.unlink(missing_ok=True)
    return BackupSummary(path=path, rows=rows, files=files)


def backup_restore(*, path: Path, force: bool = False) -> dict:
    """Replace this installation's data and media with the archive's. Refuses to overwrite a database
    that holds projects unless ``force``."""
    from annotator.models import Project

    with tempfile.TemporaryDirectory(dir=_scratch_dir()) as tmp:
        staged = Path(tmp)
        manifest = _extract(path, staged)
        call_command("migrate", interactive=False, verbosity=0)
        if not force and Project.objects.exists():
            raise BackupError(
                "This database already holds projects; restoring would replace them. "
                "Use --force to replace them anyway."
            )
        swaps = [(staged / prefix, folder) for prefix, folder in _targets(manifest["with_models"])]
        if not _media_on_disk():
            _put_bucket_objects(staged / "media")  # first: a failure here leaves the database as it was
        with transaction.atomic():
            call_command("flush", interactive=False, verbosity=0)
            call_command("loaddata", str(staged / "db.json"), verbosity=0)
            _swap_folders(swaps)  # last: if it fails, the transaction rolls the database back
    return manifest


def _latest_migrations() -> dict[str, str]:
    latest: dict[str, str] = {}
    for app, name in MigrationRecorder(connection).migration_qs.values_list("app", "name").order_by("app", "name"):
        latest[app] = name
    return latest


def _media_on_disk() -> bool:
    return isinstance(default_storage, FileSystemStorage)


def _bucket_prefix() -> str:
    """The key prefix of the storage's objects (its location), "" for the whole bucket."""
    location = (getattr(default_storage, "location", "") or "").strip("/")
    return f"{location}/" if location else ""


def _add_bucket_objects(archive: tarfile.TarFile) -> int:
    """Every object under the storage's location into ``archive`` as media/NAME, streamed: the listing
    is paged by boto3, each object's body is copied into the archive as it is read."""
    bucket, prefix, added = default_storage.bucket, _bucket_prefix(), 0  # type: ignore[attr-defined]
    for summary in bucket.objects.filter(Prefix=prefix):
        name = summary.key[len(prefix) :]
        if not name or name.endswith("/"):
            continue
        info = tarfile.TarInfo(f"media/{name}")
        info.size, info.mtime = summary.size, int(summary.last_modified.timestamp())
        body = summary.get()["Body"]
        try:
            archive.addfile(info, body)
        finally:
            body.close()
        added += 1
    return added


def _put_bucket_objects(staged: Path) -> None:
    """The archive's media files back into the bucket under their names (overwriting: the names are
    the rows' own)."""
    if not staged.exists():
        return
    bucket, prefix = default_storage.bucket, _bucket_prefix()  # type: ignore[attr-defined]
    for file in sorted(p for p in staged.rglob("*") if p.is_file()):
        name = file.relative_to(staged).as_posix()
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        try:
            bucket.upload_file(str(file), prefix + name, ExtraArgs={"ContentType": content_type})
        except Exception as error:  # boto3's errors: say which object, change nothing in the database
            raise BackupError(
                f"Could not put {name} back into the bucket ({error}); the database is unchanged."
            ) from None


def _folders(with_models: bool) -> list[tuple[Path, str]]:
    pairs = [(Path(settings.MEDIA_ROOT), "media")] if _media_on_disk() else []
    if with_models:
        pairs.append((Path(settings.MODEL_DIR), "models"))
    return [(folder, prefix) for folder, prefix in pairs if folder.exists()]


def _targets(with_models: bool) -> list[tuple[str, Path]]:
    targets = [("media", Path(settings.MEDIA_ROOT))] if _media_on_disk() else []
    if with_models:
        targets.append(("models", Path(settings.MODEL_DIR)))
    return targets


def _scratch_dir() -> Path:
    # Beside the media folder, so the final swap is a rename on one file system, not a copy.
    parent = Path(settings.MEDIA_ROOT).parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _extract(path: Path, into: Path) -> dict:
    try:
        with tarfile.open(path, "r:gz") as archive:
            # A backup holds regular files and folders only. Any link is refused, even one that stays
            # inside the folder ("media/up -> .."): once swapped into place it would let the image
            # views serve files beside MEDIA_ROOT (the database, the secret key).
            links = [m.name for m in archive.getmembers() if not (m.isfile() or m.isdir())]
            if links:
                raise BackupError(
                    f"{path} holds links or special files ({', '.join(links[:5])}); a Twinlabel "
                    "backup never does, so nothing was restored."
                )
            # The "data" filter refuses absolute names and "..", as a second line.
            archive.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BackupError(f"{path} is not a readable backup archive ({error}).") from None
    try:
        manifest = json.loads((into / "manifest.json").read_text())
    except (OSError, ValueError):
        raise BackupError(f"{path} has no manifest.json: it is not a Twinlabel backup.") from None
    if manifest.get("format") != FORMAT or not (into / "db.json").is_file():
        raise BackupError(f"{path} is a backup in format {manifest.get('format')!r}; this version reads {FORMAT}.")
    return manifest


def _swap_folders(swaps: list[tuple[Path, Path]]) -> None:
    done: list[tuple[Path, Path]] = []
    try:
        for staged, target in swaps:
            old = target.with_name(target.name + ".before-restore")
            if old.exists():
                shutil.rmtree(old)
            if target.exists():
                target.rename(old)
            if staged.exists():
                shutil.move(str(staged), str(target))
            else:
                target.mkdir(parents=True)
            done.append((target, old))
    except BaseException:
        for target, old in reversed(done):
            shutil.rmtree(target, ignore_errors=True)
            if old.exists():
                old.rename(target)
        raise
    for _, old in done:
        shutil.rmtree(old, ignore_errors=True)
