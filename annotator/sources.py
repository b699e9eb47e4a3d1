"""Where images come from: folders (recursive), zip files, uploaded files. Pure; no ORM.

Each yields ``ImageSource`` items to read lazily, or a ``Rejection`` when an entry must not be read
at all (a zip entry that would escape its folder, a zip bomb). The import service takes either.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
# A zip entry that inflates more than this many times over is treated as a zip bomb.
ZIP_MAX_RATIO = 200


@dataclass(frozen=True)
class ImageSource:
    name: str  # what the person recognises: a path relative to the folder or zip they gave
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Rejection:
    name: str
    reason: str


def is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def sources_from_paths(
    paths: Iterable[Path], *, max_bytes: int, max_total: int | None = None
) -> Iterator[ImageSource | Rejection]:
    """Folders are walked recursively in sorted order; zips are opened; other files are read as images."""
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.suffix.lower() == ".zip":
                    yield from sources_from_zip(child, max_bytes=max_bytes, max_total=max_total)
                elif is_image_name(child.name):
                    yield _file_source(child, child.relative_to(path).as_posix(), max_bytes)
        elif path.suffix.lower() == ".zip":
            yield from sources_from_zip(path, max_bytes=max_bytes, max_total=max_total)
        elif path.is_file():
            yield _file_source(path, path.name, max_bytes)
        else:
            yield Rejection(str(path), "no such file or folder")


def sources_from_zip(
    path: Path | BinaryIO, *, max_bytes: int, name: str | None = None, max_total: int | None = None
) -> Iterator[ImageSource | Rejection]:
    """The image entries of a zip (a path, or an open file such as an upload named ``name``).
    With ``max_total``, an archive whose image entries inflate to more than that is refused whole,
    before anything is read."""
    zip_name = name or path.name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        yield Rejection(zip_name, f"not a readable zip file ({error})")
        return
    with archive:
        if max_total is not None:
            total = sum(i.file_size for i in archive.infolist() if not i.is_dir() and is_image_name(i.filename))
            if total > max_total:
                yield Rejection(
                    zip_name,
                    f"the zip inflates to {total / 1e6:.0f} MB; the limit is "
                    f"{max_total / 1e6:.0f} MB; split it into smaller zips",
                )
                return
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = f"{zip_name}/{info.filename}"
            reason = _unsafe_zip_entry(info, max_bytes)
            if reason:
                yield Rejection(name, reason)
            elif is_image_name(info.filename):
                yield ImageSource(name, _zip_reader(archive, info, max_bytes))


def _unsafe_zip_entry(info: zipfile.ZipInfo, max_bytes: int) -> str | None:
    parts = PurePosixPath(info.filename.replace("\\", "/")).parts
    if info.filename.startswith(("/", "\\")) or (parts and parts[0].endswith(":")) or ".." in parts:
        return "unsafe path in zip (absolute or containing '..'); entry refused"
    if info.file_size > max_bytes:
        return f"the entry is {info.file_size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB"
    if info.compress_size and info.file_size / info.compress_size > ZIP_MAX_RATIO and info.file_size > 1_000_000:
        return f"the entry inflates {info.file_size // info.compress_size}× (zip bomb); entry refused"
    return None


def _zip_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> Callable[[], bytes]:
    def read() -> bytes:
        # Read one byte past the limit: a header that lies about the size cannot make us inflate more.
        with archive.open(info) as entry:
            return entry.read(max_bytes + 1)

    return read


def _file_source(path: Path, name: str, max_bytes: int) -> ImageSource:
    def read() -> bytes:
        with path.open("rb") as handle:
            return handle.read(max_bytes + 1)

    return ImageSource(name, read)
