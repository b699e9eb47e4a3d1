"""A full disk, as the kernel or the database itself reports it (no Python patched)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection


@contextlib.contextmanager
def small_disk(root: Path, size: str) -> Iterator[Path]:
    """A real filesystem of ``size`` ("4m") at ``root`` (a tmpfs): where the tests may mount one (as
    root, as in CI); the test is skipped elsewhere."""
    root.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=True)


class FullDisk:
    """Within the block, the database refuses writes for lack of space. PostgreSQL: a trigger on
    ``annotator_box`` raises SQLSTATE 53100 (disk_full) inside the server, for every connection (a
    bin/web process too). SQLite: this connection's file may not grow (PRAGMA max_page_count), which
    is SQLITE_FULL itself; other processes' connections are not limited."""

    def __enter__(self):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "CREATE FUNCTION twinlabel_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; "
                    "END $$"
                )
                cursor.execute(
                    "CREATE TRIGGER twinlabel_disk_full BEFORE INSERT ON annotator_box "
                    "FOR EACH ROW EXECUTE FUNCTION twinlabel_disk_full()"
                )
            elif connection.vendor == "sqlite":
                cursor.execute("VACUUM")  # no free pages left to reuse
                cursor.execute("PRAGMA page_count")
                cursor.execute(f"PRAGMA max_page_count = {cursor.fetchone()[0]}")
            else:  # pragma: no cover
                pytest.skip(f"no way to fill {connection.vendor}'s disk here")
        return self

    def __exit__(self, *exc):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("DROP TRIGGER twinlabel_disk_full ON annotator_box")
                cursor.execute("DROP FUNCTION twinlabel_disk_full()")
            else:
                cursor.execute("PRAGMA max_page_count = 1073741823")
