"""Annotation file formats: one module per format, pure functions over the plain records below.

No ORM here. Writers take an iterable of ``ImageRecord`` and yield ``bytes`` chunks (so an export
streams with flat memory); readers take file contents and return ``ParsedImage`` records with
**pixel** boxes, matched to the project's images by file name elsewhere (annotator/exchange.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, NamedTuple


class FormatError(ValueError):
    """The file is not valid in its format; the message says where and what."""


class BoxRecord(NamedTuple):
    # A named tuple, not a dataclass: an export makes one per box (300,000 for 100,000 images),
    # and a tuple is built several times faster while staying immutable.
    label: str
    x: float  # image pixels, origin top-left
    y: float
    w: float
    h: float
    attributes: dict[str, Any] | None = None  # only what is set, e.g. {"occluded": True} (annotator/attributes.py)


class Prediction(NamedTuple):
    label: str
    score: float


class BoxPrediction(NamedTuple):
    # A suggested box of the detector, in image pixels, with its score.
    label: str
    x: float
    y: float
    w: float
    h: float
    score: float


@dataclass(frozen=True)
class ImageRecord:
    id: int
    file_name: str
    width: int
    height: int
    status: str = ""
    boxes: tuple[BoxRecord, ...] = ()
    tags: tuple[str, ...] = ()  # image-level labels a person set (box classes are not repeated here)
    predictions: tuple[Prediction, ...] = ()  # the model's image-level suggestions above a threshold
    sha256: str = ""  # of the stored file: lets a re-import find the image whatever its name
    stored: str = ""  # the file's name in the media storage (a YOLO export with the images reads it)
    box_predictions: tuple[BoxPrediction, ...] = ()  # the detector's boxes above a threshold

    @property
    def labels(self) -> set[str]:
        """The image-level label set: its tags plus the classes of its boxes."""
        return set(self.tags) | {b.label for b in self.boxes}


@dataclass(frozen=True)
class LabelInfo:
    name: str
    color: str = ""
    # The label's box attribute definitions (annotator/attributes.py), if any.
    attributes: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ExportMeta:
    project: str
    labels: tuple[LabelInfo, ...]  # every label of the project, in the project's order
    box_labels: tuple[str, ...] = ()  # the labels used by at least one box (YOLO's class list)

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]


@dataclass(frozen=True)
class ParsedImage:
    file_name: str
    boxes: tuple[BoxRecord, ...] = ()
    tags: tuple[str, ...] = ()
    sha256: str = ""  # when the file carries it (Twinlabel's COCO and JSON exports): matched on first
    status: str = ""  # when the file carries it: only "submitted" images are annotations to import


@dataclass
class ParsedFile:
    images: list[ParsedImage] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # label names the file declares, in its order
    # name -> attribute definitions (native JSON)
    label_attributes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def base_name(path: str) -> str:
    """The file name of a path or URL as other tools write them (``../media/upload/3/x.png`` → ``x.png``)."""
    return PurePosixPath(path.replace("\\", "/").split("?", 1)[0]).name


_LS_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def name_candidates(path: str) -> list[str]:
    """Names an image may have been uploaded as: Label Studio prefixes uploads with 8 hex digits."""
    name = base_name(path)
    stripped = _LS_UPLOAD_PREFIX.sub("", name)
    return [name, stripped] if stripped != name else [name]


def optional_str(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    return value if isinstance(value, str) else ""


def stem(name: str) -> str:
    return PurePosixPath(name).stem


# Every format module registers its writer and reader (annotator/formats/registry.py) when imported;
# importing them here, after the records they use, makes the registry complete and its order fixed
# (the order the API, the page and the CLI list formats in) whichever module a caller imports first.
from annotator.formats import coco, voc, yolo, csv_multilabel, labelstudio, native, coco_results  # noqa: E402,F401,I001
