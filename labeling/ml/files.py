"""Files model assistance writes whole or not at all, on a disk that may fill up under it.

Every checkpoint, embedding block, probe and index goes through ``replaced``: the bytes go to a
temporary file beside the target, which replaces it in one step (os.replace) only once written, so
a crash mid-write never leaves a torn file. What the earlier inline version of this (a ``.tmp`` name
and ``os.replace``, at each writer) lacked is the failed write: a disk that fills mid-write left the
partial temporary file behind, holding the space that was left, and ``torch.save`` reports a full
disk as a RuntimeError ("unexpected pos 704 vs 598"), which nobody can act on. Here the partial file
is removed and the writer gets OSError(ENOSPC), which ``disk_full`` recognises and the run's error
spells out (labeling/runs.py).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextmanager
def replaced(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """The open temporary file that replaces ``path`` when the block ends without an error. Write
    through this file object, not the file's name (torch.save, np.save, np.savez and faiss's
    PyCallbackIOWriter all take one). The name is the process's own, so two processes writing the
    same file (two workers) never write into one temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, path)
    except Exception as exc:
        full = disk_full(exc)
        if full is None or full is exc:
            raise
        # torch.save meets a full disk mid-record, then fails to finish the zip: a RuntimeError
        # ("unexpected pos 704 vs 598") raised while handling the OSError. The writer gets the OSError.
        raise OSError(full.errno, full.strerror, str(path)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def disk_full(error: BaseException | None) -> OSError | None:
    """The OSError for a full disk (or a quota, or a file-size limit) behind ``error``, if one is:
    ``error`` itself or an exception it was raised from or during."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return error
        error = error.__cause__ or error.__context__
    return None
