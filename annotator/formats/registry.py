"""The one list of annotation file formats, after CVAT's dataset_manager/formats/registry.py: each
format module registers its writer (export) and reader (import) with a decorator that names it, and
the API, the project page and the management commands list formats from here, never by hand.

Every writer and reader has one signature, so a caller needs no per-format branch:

- a writer takes the export's ``ExportMeta``, its ``ImageRecord`` iterable and ``WriteOptions``, and
  yields ``bytes`` chunks;
- a reader takes the uploaded files, unzipped, as (name, contents) pairs and an ``ImageLookup`` (the
  project's images by sha256, name or stem: only some formats need it), and returns a ``ParsedFile``.

Pure: no Django. Registration happens when ``annotator.formats`` is imported (its last lines import
every format module in the order the lists show them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from annotator.formats import ExportMeta, FormatError, ImageRecord, ParsedFile


@dataclass(frozen=True)
class WriteOptions:
    predictions: bool = False  # carry the model's suggestions (formats with room for them)
    image_file: Callable[[ImageRecord], bytes] | None = None  # the stored bytes of an image, to ship the images too


class ImageLookup(Protocol):
    """The project's images as a reader may need them (annotator/exchange.py's ImageMatcher)."""

    def find(self, file_name: str, sha256: str = "") -> tuple[int, int, int] | None:
        """(image id, width, height) of the image this file name (or sha256) means, or None."""

    def find_stem(self, file_stem: str) -> tuple[str, int, int] | None:
        """(file name, width, height) of the image with this file stem, or None."""


WriteFn = Callable[[ExportMeta, Iterable[ImageRecord], WriteOptions], Iterator[bytes]]
ReadFn = Callable[[list[tuple[str, bytes]], ImageLookup], ParsedFile]


@dataclass(frozen=True)
class Writer:
    name: str  # what ?format= and --format take
    title: str  # what the project page shows
    extension: str  # of the exported file: project-<id>-<name>.<extension>
    media_type: str
    version: str
    predictions: bool  # whether it has room for the model's suggestions
    images: bool  # whether it can ship the image files too (images=1)
    write: WriteFn

    def file_name(self, stem: str) -> str:
        return f"{stem}-{self.name}.{self.extension}"


@dataclass(frozen=True)
class Reader:
    name: str
    title: str
    extension: str  # of the file it reads (a zip of such files is unpacked first)
    media_type: str
    version: str
    read: ReadFn


WRITERS: dict[str, Writer] = {}
READERS: dict[str, Reader] = {}


def writer(
    name: str,
    *,
    title: str,
    extension: str,
    media_type: str,
    version: str = "",
    predictions: bool = False,
    images: bool = False,
) -> Callable[[WriteFn], WriteFn]:
    """Register the decorated function as the writer of format ``name``."""

    def register(write: WriteFn) -> WriteFn:
        if name in WRITERS:
            raise ValueError(f"Two writers registered as “{name}”.")
        WRITERS[name] = Writer(name, title, extension, media_type, version, predictions, images, write)
        return write

    return register


def reader(name: str, *, title: str, extension: str, media_type: str, version: str = "") -> Callable[[ReadFn], ReadFn]:
    """Register the decorated function as the reader of format ``name``."""

    def register(read: ReadFn) -> ReadFn:
        if name in READERS:
            raise ValueError(f"Two readers registered as “{name}”.")
        READERS[name] = Reader(name, title, extension, media_type, version, read)
        return read

    return register


def writers() -> list[Writer]:
    return list(WRITERS.values())


def readers() -> list[Reader]:
    return list(READERS.values())


def get_writer(name: str) -> Writer:
    """The writer of ``name``; FormatError names the formats there are."""
    if name not in WRITERS:
        raise FormatError(f"Unknown export format “{name}”; use one of {', '.join(WRITERS)}.")
    return WRITERS[name]


def get_reader(name: str) -> Reader:
    if name not in READERS:
        raise FormatError(f"Unknown import format “{name}”; use one of {', '.join(READERS)}.")
    return READERS[name]


def single_file(name: str, files: list[tuple[str, bytes]]) -> bytes:
    """The contents of the one file a single-document format (COCO, JSON, Label Studio) reads."""
    if len(files) != 1:
        raise FormatError(f"A {name} import is one file.")
    return files[0][1]
