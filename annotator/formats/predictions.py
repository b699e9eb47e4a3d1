"""Predictions of another model (a team's YOLO, a classifier), read into plain records. No ORM: the
records say which image they mean (``ImageRef``) and the service matches them to the project's
images (labeling/external.py).

Three formats:

- ``json``: ``{"model_version": "...", "predictions": [{"image_id" | "sha256" | "file_name": ...,
  "tags": [{"label": "dog", "score": 0.93}] or {"dog": 0.93}, "boxes": [{"label": "dog",
  "bbox": [x, y, w, h], "score": 0.8}]}]}``, boxes in image pixels;
- ``coco``: a COCO results file, a list of ``{"image_id", "category_id", "bbox", "score"}`` (an entry
  without ``bbox`` is an image-level prediction). Bare, ``image_id`` is Twinlabel's image id and
  ``category_id`` the label's place in the project (1..N, as Twinlabel's COCO export numbers them);
  or a COCO document whose ``annotations`` carry scores, with its own ``images`` (matched by
  ``sha256`` or ``file_name``) and ``categories``;
- ``yolo``: one ``<image stem>.txt`` per image of ``class cx cy w h confidence`` lines (normalised to
  [0, 1]), and the class names in ``data.yaml`` or ``classes.txt``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from annotator.formats import FormatError, Prediction, base_name, optional_str, stem
from annotator.formats.yolo import NAMES_FILES, read_names

FORMATS = ("json", "coco", "yolo")


class ImageRef(NamedTuple):
    """Which image an entry means: Twinlabel's id, the file's sha256, its file name, or (YOLO) the stem of its name."""

    image_id: int | None = None
    sha256: str = ""
    file_name: str = ""
    by_stem: bool = False

    def describe(self) -> str:
        if self.image_id is not None:
            return f"id {self.image_id}"
        if self.sha256:
            return f"sha256 {self.sha256[:16]}…" if len(self.sha256) > 16 else f"sha256 {self.sha256}"
        return f"{self.file_name}.*" if self.by_stem else self.file_name


class BoxPrediction(NamedTuple):
    label: str
    x: float  # image pixels, origin top-left; normalised to [0, 1] when ``normalised`` (YOLO)
    y: float
    w: float
    h: float
    score: float
    normalised: bool = False


@dataclass(frozen=True)
class PredictedImage:
    ref: ImageRef
    tags: tuple[Prediction, ...] = ()
    boxes: tuple[BoxPrediction, ...] = ()


@dataclass
class PredictionFile:
    images: list[PredictedImage] = field(default_factory=list)
    model_version: str = ""  # when the file carries it (JSON)

    @property
    def labels(self) -> list[str]:
        """Every label name the predictions use, in first-seen order."""
        names: dict[str, None] = {}
        for image in self.images:
            names.update((p.label, None) for p in image.tags)
            names.update((b.label, None) for b in image.boxes)
        return list(names)

    @property
    def tag_count(self) -> int:
        return sum(len(image.tags) for image in self.images)

    @property
    def box_count(self) -> int:
        return sum(len(image.boxes) for image in self.images)


def score_of(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise FormatError(f"{where}: the score must be a number from 0 to 1, not {str(value)[:40]}.")
    return float(value)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bbox(value: object, where: str) -> tuple[float, float, float, float]:
    if not isinstance(value, list) or len(value) != 4 or not all(_number(v) for v in value):
        raise FormatError(f"{where}: “bbox” must be four numbers [x, y, width, height].")
    x, y, w, h = (float(v) for v in value)
    if w <= 0 or h <= 0:
        raise FormatError(f"{where}: a box needs a width and a height above 0.")
    return x, y, w, h


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FormatError(f"The {what} is not valid JSON ({error}).") from None


def _label(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FormatError(f"{where}: “label” must be a label name.")
    return value.strip()


# ---------------------------------------------------------------------------------------------
# Twinlabel's predictions JSON


def read_json(data: bytes) -> PredictionFile:
    doc = _json(data, "predictions file")
    if not isinstance(doc, dict) or not isinstance(doc.get("predictions"), list):
        raise FormatError("A predictions file is a JSON object with “model_version” and a list of “predictions”.")
    version = doc.get("model_version", "")
    if not isinstance(version, str):
        raise FormatError("“model_version” must be a string.")
    images = [_json_entry(entry, f"prediction #{i}") for i, entry in enumerate(doc["predictions"])]
    return PredictionFile(images=images, model_version=version.strip())


def _json_entry(entry: object, where: str) -> PredictedImage:
    if not isinstance(entry, dict):
        raise FormatError(f"{where} must be an object.")
    image_id = entry.get("image_id")
    if image_id is not None and (isinstance(image_id, bool) or not isinstance(image_id, int)):
        raise FormatError(f"{where}: “image_id” must be an integer.")
    ref = ImageRef(image_id, optional_str(entry, "sha256").lower(), base_name(optional_str(entry, "file_name")))
    if ref.image_id is None and not ref.sha256 and not ref.file_name:
        raise FormatError(f"{where} needs “image_id”, “sha256” or “file_name” to say which image it is for.")
    raw_tags = entry.get("tags") or []
    if isinstance(raw_tags, dict):
        raw_tags = [{"label": k, "score": v} for k, v in raw_tags.items()]
    if not isinstance(raw_tags, list):
        raise FormatError(f"{where}: “tags” must be a list of {{label, score}} or an object of label: score.")
    tags = []
    for j, tag in enumerate(raw_tags):
        at = f"{where} tag #{j}"
        if not isinstance(tag, dict):
            raise FormatError(f"{at} must be an object with “label” and “score”.")
        tags.append(Prediction(_label(tag.get("label"), at), score_of(tag.get("score"), at)))
    raw_boxes = entry.get("boxes") or []
    if not isinstance(raw_boxes, list):
        raise FormatError(f"{where}: “boxes” must be a list.")
    boxes = []
    for j, box in enumerate(raw_boxes):
        at = f"{where} box #{j}"
        if not isinstance(box, dict):
            raise FormatError(f"{at} must be an object with “label”, “bbox” and “score”.")
        x, y, w, h = _bbox(box.get("bbox"), at)
        boxes.append(BoxPrediction(_label(box.get("label"), at), x, y, w, h, score_of(box.get("score"), at)))
    return PredictedImage(ref, tuple(tags), tuple(boxes))


# ---------------------------------------------------------------------------------------------
# COCO results


def read_coco_results(data: bytes, *, categories: Mapping[int, str]) -> PredictionFile:
    """``categories``: category id -> label name for a bare results list (a document brings its own)."""
    doc = _json(data, "COCO results file")
    refs: dict[int, ImageRef] | None = None
    if isinstance(doc, dict):
        refs, categories = _coco_images(doc), _coco_categories(doc)
        doc = doc.get("annotations")
    if not isinstance(doc, list):
        raise FormatError(
            "A COCO results file is a list of {image_id, category_id, bbox, score}, or a COCO document whose "
            "“annotations” carry a score."
        )
    images: dict[int, tuple[list[Prediction], list[BoxPrediction]]] = {}
    for i, result in enumerate(doc):
        where = f"result #{i}"
        if not isinstance(result, dict):
            raise FormatError(f"{where} must be an object.")
        image_id, category_id = result.get("image_id"), result.get("category_id")
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            raise FormatError(f"{where}: “image_id” must be an integer.")
        if refs is not None and image_id not in refs:
            raise FormatError(f"{where} refers to image {image_id}, which “images” does not list.")
        if isinstance(category_id, bool) or not isinstance(category_id, int) or category_id not in categories:
            raise FormatError(f"{where} refers to category {str(category_id)[:40]}, which is not a known category.")
        label, score = categories[category_id], score_of(result.get("score"), where)
        tags, boxes = images.setdefault(image_id, ([], []))
        if result.get("bbox") in (None, []):
            tags.append(Prediction(label, score))
        else:
            boxes.append(BoxPrediction(label, *_bbox(result.get("bbox"), where), score))
    return PredictionFile(
        images=[
            PredictedImage(refs[image_id] if refs is not None else ImageRef(image_id), tuple(tags), tuple(boxes))
            for image_id, (tags, boxes) in images.items()
        ]
    )


def _coco_images(doc: dict[str, Any]) -> dict[int, ImageRef]:
    images = doc.get("images")
    if not isinstance(images, list):
        raise FormatError("A COCO document needs “images” to say which images its results are for.")
    refs = {}
    for im in images:
        if not isinstance(im, dict) or not isinstance(im.get("id"), int) or not isinstance(im.get("file_name"), str):
            raise FormatError(f"COCO image {str(im)[:80]} needs an integer “id” and a “file_name”.")
        refs[im["id"]] = ImageRef(None, optional_str(im, "sha256").lower(), base_name(im["file_name"]))
    return refs


def _coco_categories(doc: dict[str, Any]) -> dict[int, str]:
    categories = doc.get("categories")
    if not isinstance(categories, list):
        raise FormatError("A COCO document needs “categories”.")
    out = {}
    for c in categories:
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            raise FormatError(f"COCO category {str(c)[:80]} needs an integer “id” and a “name”.")
        out[c["id"]] = c["name"].strip()
    return out


# ---------------------------------------------------------------------------------------------
# YOLO with a confidence column


def read_yolo(files: list[tuple[str, bytes]]) -> PredictionFile:
    """Label files (``<stem>.txt``) and one names file; each line ``class cx cy w h confidence``."""
    names_files = [(n, d) for n, d in files if base_name(n) in NAMES_FILES]
    if not names_files:
        raise FormatError("YOLO predictions need the class names: add data.yaml or classes.txt.")
    names = read_names(*names_files[0])
    images = []
    for file_name, data in files:
        if (file_name, data) in names_files or not file_name.endswith(".txt"):
            continue
        boxes = [_yolo_line(line, names, f"{file_name} line {n}") for n, line in enumerate(_lines(file_name, data), 1)]
        images.append(
            PredictedImage(
                ImageRef(file_name=stem(base_name(file_name)), by_stem=True), (), tuple(b for b in boxes if b)
            )
        )
    if not images:
        raise FormatError("No YOLO label files (.txt) beside the class names.")
    return PredictionFile(images=images)


def _lines(name: str, data: bytes) -> list[str]:
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise FormatError(f"{name} is not UTF-8 text.") from None


def _yolo_line(line: str, names: list[str], where: str) -> BoxPrediction | None:
    fields = line.split()
    if not fields:
        return None
    if len(fields) != 6:
        raise FormatError(f"{where}: expected “class cx cy w h confidence” (six columns), found {len(fields)}.")
    try:
        cls, (cx, cy, w, h, confidence) = int(fields[0]), (float(v) for v in fields[1:])
    except ValueError:
        raise FormatError(f"{where}: expected “class cx cy w h confidence”, numbers only.") from None
    if not 0 <= cls < len(names):
        raise FormatError(f"{where}: class {cls} is not in the names file (0 to {len(names) - 1}).")
    if not all(0 <= v <= 1 for v in (cx, cy, w, h)) or w == 0 or h == 0:
        raise FormatError(f"{where}: coordinates must be normalised to [0, 1], with a width and height above 0.")
    return BoxPrediction(names[cls], cx - w / 2, cy - h / 2, w, h, score_of(confidence, where), normalised=True)


def read_predictions(fmt: str, files: list[tuple[str, bytes]], *, label_names: list[str]) -> PredictionFile:
    """``label_names``: the project's labels in order (a bare COCO results list numbers them 1..N)."""
    if fmt not in FORMATS:
        raise FormatError(f"Unknown predictions format “{fmt}”: use one of {', '.join(FORMATS)}.")
    if not files:
        raise FormatError("Choose the predictions file(s) to import.")
    if fmt == "yolo":
        return read_yolo(files)
    if len(files) != 1:
        raise FormatError(f"A {fmt} predictions import takes one file, not {len(files)}.")
    data = files[0][1]
    if fmt == "json":
        return read_json(data)
    return read_coco_results(data, categories={i: name for i, name in enumerate(label_names, start=1)})
