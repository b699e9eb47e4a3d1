"""A write the disk refused for lack of space, recognised in one place for annotation's writers
(uploads, exports, backups; labeling.ml.files has the model files' own: annotator never imports it)."""

from __future__ import annotations

import errno


def disk_full(error: BaseException) -> bool:
    """A full disk, a quota or a file-size limit: each says so in words instead of an errno."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
