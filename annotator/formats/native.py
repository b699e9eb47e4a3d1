"""Twinlabel's own JSON: complete and re-importable. One object:

    {"format": "twinlabel", "version": 1, "project": "...",
     "labels": [{"name", "color", "attributes"?}],
     "images": [{"file_name", "sha256", "width", "height", "status",
                 "boxes": [{"label", "x", "y", "w", "h", "attributes"?}], "tags": ["label", ...],
                 "predictions": [{"label", "score"}],                      (predictions only when asked for)
                 "box_predictions": [{"label", "x", "y", "w", "h", "score"}]}]}

Coordinates are image pixels; a box's ``attributes`` (only what is set) is written when it has any. Import reads ``labels`` (new names become labels of the project, with their box attribute definitions)
and, per image, its boxes and tags.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from annotator.formats import BoxRecord, ExportMeta, FormatError, ImageRecord, LabelInfo, ParsedFile, ParsedImage
from annotator.formats import base_name, optional_str
from annotator.formats import registry

CHUNK = 1 << 16


def image_dict(image: ImageRecord, *, predictions: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "file_name": image.file_name,
        "sha256": image.sha256,
        "width": image.width,
        "height": image.height,
        "status": image.status,
        "boxes": [_box(b) for b in image.boxes],
        "tags": list(image.tags),
    }
    if predictions:
        entry["predictions"] = [{"label": p.label, "score": p.score} for p in image.predictions]
        entry["box_predictions"] = [
            {"label": b.label, "x": b.x, "y": b.y, "w": b.w, "h": b.h, "score": b.score} for b in image.box_predictions
        ]
    return entry


def _box(b: BoxRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {"label": b.label, "x": b.x, "y": b.y, "w": b.w, "h": b.h}
    if b.attributes:
        entry["attributes"] = b.attributes
    return entry


def write(meta: ExportMeta, images: Iterable[ImageRecord], *, predictions: bool = False) -> Iterator[bytes]:
    head = {
        "format": "twinlabel",
        "version": 1,
        "project": meta.project,
        "labels": [_label(label) for label in meta.labels],
    }
    parts = [json.dumps(head)[:-1] + ', "images": [\n']
    size = 0
    for i, image in enumerate(images):
        parts.append(("" if i == 0 else ",\n") + json.dumps(image_dict(image, predictions=predictions)))
        size += len(parts[-1])
        if size >= CHUNK:
            yield "".join(parts).encode()
            parts, size = [], 0
    parts.append("\n]}\n")
    yield "".join(parts).encode()


def read(data: bytes) -> ParsedFile:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FormatError(f"The file is not valid JSON ({error}).") from None
    if not isinstance(doc, dict) or doc.get("format") != "twinlabel" or not isinstance(doc.get("images"), list):
        raise FormatError("A Twinlabel JSON export is an object with “format”: “twinlabel” and “images”.")
    declared = [
        label for label in doc.get("labels") or [] if isinstance(label, dict) and isinstance(label.get("name"), str)
    ]
    labels = [label["name"] for label in declared]
    # A label's own box attributes (checked like any label edit when the import creates the label).
    label_attributes = {
        label["name"]: label["attributes"]
        for label in declared
        if isinstance(label.get("attributes"), list) and label["attributes"]
    }
    images = []
    for i, im in enumerate(doc["images"]):
        where = f"images[{i}]"
        if not isinstance(im, dict) or not isinstance(im.get("file_name"), str):
            raise FormatError(f"{where} needs a “file_name”.")
        boxes = []
        for j, b in enumerate(im.get("boxes") or []):
            try:
                attributes = b.get("attributes") or None
                if attributes is not None and not isinstance(attributes, dict):
                    raise TypeError
                label = str(b["label"])
                x, y, w, h = (float(b[k]) for k in "xywh")
                boxes.append(BoxRecord(label, x, y, w, h, attributes))
            except (KeyError, TypeError, ValueError):
                raise FormatError(
                    f"{where}.boxes[{j}] needs a label, numbers x, y, w, h and maybe an object “attributes”."
                ) from None
        tags = im.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise FormatError(f"{where}.tags must be a list of label names.")
        images.append(
            ParsedImage(
                base_name(im["file_name"]),
                tuple(boxes),
                tuple(tags),
                optional_str(im, "sha256"),
                optional_str(im, "status"),
            )
        )
    return ParsedFile(images=images, labels=labels, label_attributes=label_attributes)


def _label(label: LabelInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": label.name, "color": label.color}
    if label.attributes:
        entry["attributes"] = list(label.attributes)
    return entry


@registry.writer(
    "json", title="Twinlabel JSON", extension="json", media_type="application/json", version="1", predictions=True
)
def export(meta: ExportMeta, images: Iterable[ImageRecord], options: registry.WriteOptions) -> Iterator[bytes]:
    return write(meta, images, predictions=options.predictions)


@registry.reader("json", title="Twinlabel JSON", extension="json", media_type="application/json", version="1")
def import_files(files: list[tuple[str, bytes]], images: registry.ImageLookup) -> ParsedFile:
    return read(registry.single_file("json", files))
