"""A fixed-resolution uint8 image store: decode each image once, memory-map it every epoch.

One store is one directory (the caller picks it, e.g. one per project and resolution):

- ``pixels.u8``: raw rows of (R, R, 3) uint8, appended in the order the images were added;
- ``ids.npy``: int64 (N,), the caller's id of each row. It is rewritten atomically *after*
  the pixels it describes are on disk, so it is the commit record: a crash mid-append leaves
  an uncommitted tail in ``pixels.u8`` that the next open cuts off.
- ``lock``: held (flock) while appending, so two workers filling the same store take turns;
- ``meta.json``: the store's resolution, fit and format, written when the store is created. A store
  is opened only at the resolution and fit it was made for (a square resize for the pretraining,
  ``fit="letterbox"`` for the detector: aspect kept, padded): one whose meta is missing (made before this
  file existed), names another resolution, or whose pixels are shorter than its ids say is
  emptied and rebuilt, never read (a 64 px store read as 32 px would be scrambled pixels).

Callers should still keep one directory per resolution (``store_dir``), so two resolutions of
one project do not rebuild each other's store in turn.

Ids are arbitrary int64s and nothing assumes they are contiguous or sorted, so a sharded
pipeline can keep one store per shard of ids and concatenate what it reads.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from labeling.ml.files import replaced

try:  # POSIX only; on other systems appends are simply not guarded against each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

DEFAULT_RESOLUTION = 64
STORE_FORMAT = 1  # bump when the layout of pixels.u8 / ids.npy changes
log = logging.getLogger(__name__)
Source = Union[str, os.PathLike[str], bytes, BinaryIO, Image.Image]
Opener = Callable[[int], Source]


@dataclass
class AddResult:
    added: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # id -> why it could not be decoded


def decode_square(source: Source, resolution: int) -> np.ndarray:
    """Any image -> (resolution, resolution, 3) uint8 RGB.

    The whole image is resized to a square, aspect ratio not kept: labels are image-level
    and an object near the border must stay in view, which a centre crop would not promise.
    """
    with contextlib.ExitStack() as stack:
        # JPEG can decode at 1/2, 1/4, 1/8 scale: much faster for big photos.
        image = _upright(source, stack, draft=resolution)
        image = image.convert("RGB").resize((resolution, resolution), Image.Resampling.BICUBIC, reducing_gap=3.0)
        return np.asarray(image, dtype=np.uint8)


def decode_letterbox(source: Source, size: int) -> np.ndarray:
    """Any image -> (size, size, 3) uint8 RGB, letterboxed as the detector reads it
    (labeling.ml.detector.letterbox_image: aspect kept, padded): the very pixels an uncached
    detector run makes, so a cached run trains on the same input (no JPEG draft here)."""
    from labeling.ml.detector import letterbox_image  # torch: only where a detector store is filled

    with contextlib.ExitStack() as stack:
        image = _upright(source, stack, draft=None)
        return letterbox_image(np.asarray(image.convert("RGB"), dtype=np.uint8), size)[0]


def _upright(source: Source, stack: contextlib.ExitStack, draft: int | None) -> Image.Image:
    """The image of ``source``, opened (closed with ``stack``) and turned as the browser shows it."""
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, bytes):
            source = io.BytesIO(source)
        image = stack.enter_context(Image.open(source))
        if draft is not None:
            image.draft("RGB", (draft, draft))
    return ImageOps.exif_transpose(image)


FITS = ("square", "letterbox")  # how a store fits an image to its resolution: decode_square, decode_letterbox


def store_dir(base: str | os.PathLike[str], resolution: int, fit: str = "square") -> Path:
    """The directory of the store at ``resolution`` under ``base`` (e.g. a project's cache folder):
    ``r<px>`` for the pretraining's squares, ``letterbox<px>`` for the detector's letterboxes."""
    return Path(base) / (f"r{int(resolution)}" if fit == "square" else f"{fit}{int(resolution)}")


class ImageCache:
    def __init__(
        self, root: str | os.PathLike[str], resolution: int = DEFAULT_RESOLUTION, *, fit: str = "square"
    ) -> None:
        if resolution < 8:
            raise ValueError(f"resolution {resolution} is too small to learn from")
        if fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, not {fit!r}")
        self.root = Path(root)
        self.resolution = resolution
        self.fit = fit
        self.rebuilt: str | None = None  # why the store was emptied when it was opened, if it was
        self.root.mkdir(parents=True, exist_ok=True)
        self._ids = self._open_verified()

    def refresh(self) -> None:
        """See rows that other processes committed since this store was opened."""
        self._ids = self._open_verified()

    @property
    def _frame(self) -> int:
        return self.resolution * self.resolution * 3

    @property
    def ids(self) -> np.ndarray:
        """(N,) int64 ids, in row order."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def missing(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The ids not stored yet, in the order given, without duplicates."""
        ids = np.asarray(ids, dtype=np.int64)
        _, first = np.unique(ids, return_index=True)
        unique_in_order = ids[np.sort(first)]
        return unique_in_order[~np.isin(unique_in_order, self._ids)]

    def rows(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row index of each id; KeyError naming the ids that are not stored."""
        ids = np.asarray(ids, dtype=np.int64)
        order = np.argsort(self._ids, kind="stable")
        pos = np.searchsorted(self._ids, ids, sorter=order).clip(max=max(len(order) - 1, 0))
        rows = order[pos] if len(order) else np.zeros(len(ids), dtype=np.int64)
        found = (self._ids[rows] == ids) if len(order) else np.zeros(len(ids), dtype=bool)
        if not found.all():
            raise KeyError(f"not in the cache: {ids[~found][:10].tolist()}")
        return rows

    def pixels(self) -> np.ndarray:
        """(N, R, R, 3) uint8, memory-mapped read-only: no copy, whatever N is."""
        if not len(self._ids):
            return np.empty((0, self.resolution, self.resolution, 3), dtype=np.uint8)
        shape = (len(self._ids), self.resolution, self.resolution, 3)
        return np.memmap(self._pixels_path, dtype=np.uint8, mode="r", shape=shape)

    def read(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """(n, R, R, 3) uint8 for the given ids, in that order (a copy)."""
        return np.asarray(self.pixels()[self.rows(ids)])

    def view(self, ids: Sequence[int] | np.ndarray) -> "CacheView":
        """The given ids' images, in that order, without reading them: rows are read on indexing."""
        return CacheView(self.root, self.resolution, len(self._ids), self.rows(ids))

    def add(
        self, ids: Sequence[int] | np.ndarray, source: Sequence[Source] | Opener, *, workers: int = 0, chunk: int = 256
    ) -> AddResult:
        """Decode and append the images whose ids are not stored yet; idempotent.

        ``source`` is either one source per id (paths, bytes, file objects, PIL images) or a
        callable ``id -> source`` (so storage backends can open files lazily). Images that
        fail to decode are reported in ``AddResult.failed`` and not stored.
        """
        ids = np.asarray(ids, dtype=np.int64)
        opener = source if callable(source) else _opener_from_sequence(ids, source)
        result = AddResult()
        with self._locked():
            problem = self._problem()  # another process may have rebuilt it for another resolution
            if problem is not None:
                self._rebuild(problem)
            self._ids = self._load_committed(repair=True)  # another worker may have appended meanwhile
            todo = self.missing(ids)
            with ThreadPoolExecutor(max_workers=workers) if workers > 0 else contextlib.nullcontext() as pool:
                for start in range(0, len(todo), chunk):
                    batch = todo[start : start + chunk]
                    decoded = (
                        list(pool.map(lambda i: self._try_decode(opener, int(i)), batch))
                        if pool
                        else [self._try_decode(opener, int(i)) for i in batch]
                    )
                    self._append(batch, decoded, result)
        return result

    # ---- internals ----

    @property
    def _pixels_path(self) -> Path:
        return self.root / "pixels.u8"

    @property
    def _ids_path(self) -> Path:
        return self.root / "ids.npy"

    @property
    def _meta_path(self) -> Path:
        return self.root / "meta.json"

    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"resolution": self.resolution, "channels": 3, "dtype": "uint8", "format": STORE_FORMAT}
        if self.fit != "square":  # a square store's meta is as it was before letterbox stores existed
            meta["fit"] = self.fit
        return meta

    def _problem(self) -> str | None:
        """Why the store on disk cannot be read as this resolution's, or None if it can."""
        has_data = self._ids_path.exists() or self._pixels_path.exists()
        try:
            meta = json.loads(self._meta_path.read_text())
        except FileNotFoundError:
            return "it has no meta.json (its resolution is unknown)" if has_data else "new"
        except (OSError, ValueError) as exc:
            return f"its meta.json is unreadable ({exc})"
        if meta != self._meta():
            return f"it was made for {meta}, not {self._meta()}"
        try:
            ids = np.load(self._ids_path) if self._ids_path.exists() else np.empty(0, dtype=np.int64)
        except (OSError, ValueError) as exc:
            return f"its ids.npy is unreadable ({exc})"
        size = self._pixels_path.stat().st_size if self._pixels_path.exists() else 0
        if size < len(ids) * self._frame:
            return f"pixels.u8 is shorter than ids.npy says ({size} < {len(ids) * self._frame} bytes)"
        return None

    def _open_verified(self) -> np.ndarray:
        """The committed ids, after checking the store is this resolution's; else rebuild it empty."""
        if self._problem() is not None:
            with self._locked():  # another process may be rebuilding or appending: check again under the lock
                problem = self._problem()
                if problem is not None:
                    self._rebuild(problem)
        return self._load_committed(repair=False)

    def _rebuild(self, why: str) -> None:
        if why != "new":
            log.warning("image cache %s is rebuilt at %d px: %s", self.root, self.resolution, why)
            self.rebuilt = why
        for path in (self._ids_path, self._pixels_path):
            path.unlink(missing_ok=True)
        with replaced(self._meta_path) as f:
            f.write(json.dumps(self._meta()).encode())

    def _load_committed(self, *, repair: bool) -> np.ndarray:
        ids = np.load(self._ids_path) if self._ids_path.exists() else np.empty(0, dtype=np.int64)
        size = self._pixels_path.stat().st_size if self._pixels_path.exists() else 0
        committed = len(ids) * self._frame
        if size < committed:
            # Verified on open, so only a file changed under us gets here: start over rather than fail.
            if not repair:
                return self._open_verified()
            self._rebuild(f"pixels.u8 is shorter than ids.npy says ({size} < {committed} bytes)")
            return np.empty(0, dtype=np.int64)
        # More pixels than ids: a writer crashed before committing them, or (without the lock)
        # is still writing; only a lock holder may cut the tail off.
        if size > committed and repair:
            with open(self._pixels_path, "r+b") as f:
                f.truncate(committed)
        return ids

    def _try_decode(self, opener: Opener, image_id: int) -> np.ndarray | str:
        try:
            decode = decode_square if self.fit == "square" else decode_letterbox
            return decode(opener(image_id), self.resolution)
        except Exception as exc:  # noqa: BLE001 - one bad upload must not stop the whole store
            return f"{type(exc).__name__}: {exc}"

    def _append(self, batch: np.ndarray, decoded: list[np.ndarray | str], result: AddResult) -> None:
        good = [(int(i), d) for i, d in zip(batch, decoded) if isinstance(d, np.ndarray)]
        result.failed.update({int(i): d for i, d in zip(batch, decoded) if isinstance(d, str)})
        if not good:
            return
        with open(self._pixels_path, "ab") as f:
            f.write(np.stack([d for _, d in good]).tobytes())
            f.flush()
            os.fsync(f.fileno())  # pixels durable before the ids that commit them
        new_ids = np.concatenate([self._ids, np.array([i for i, _ in good], dtype=np.int64)])
        with replaced(self._ids_path) as f:
            np.save(f, new_ids)
        self._ids = new_ids
        result.added += len(good)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / "lock", "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)


def _opener_from_sequence(ids: np.ndarray, sources: Sequence[Source]) -> Opener:
    if len(sources) != len(ids):
        raise ValueError(f"{len(ids)} ids but {len(sources)} sources")
    by_id = {int(i): s for i, s in zip(ids, sources)}
    return by_id.__getitem__


class CacheView:
    """A lazy (n, R, R, 3) uint8 array over some rows of a store: ``view[positions]`` reads just
    those rows from the memory map. Pickles as (path, rows), so spawned training processes open
    the map themselves instead of receiving a copy of a project's pixels."""

    dtype = np.dtype(np.uint8)

    def __init__(self, root: Path, resolution: int, stored: int, rows: np.ndarray) -> None:
        self.root, self.resolution, self.stored, self.rows = Path(root), resolution, stored, rows
        self._map: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.rows), self.resolution, self.resolution, 3)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: int | slice | npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.uint8]:
        if self._map is None:
            self._map = np.memmap(
                self.root / "pixels.u8",
                dtype=np.uint8,
                mode="r",
                shape=(self.stored, self.resolution, self.resolution, 3),
            )
        return np.asarray(self._map[self.rows[positions]])

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> npt.NDArray[Any]:
        out = self[np.arange(len(self.rows))]
        return out if dtype is None else out.astype(dtype)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_map": None}
