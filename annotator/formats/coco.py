"""COCO object detection JSON (https://cocodataset.org/#format-data).

Export: ``categories`` are every project label (ids 1..N in the project's order), ``annotations``
the boxes (``bbox`` = [x, y, width, height] in pixels). COCO has no image-level labels, so each
image carries two documented extra fields that COCO readers ignore:

- ``image_labels``: category ids of the image's tags (labels set on the whole image);
- ``predictions`` (only when asked for): [{"category_id", "score"}], the model's suggestions;
- ``status`` (submitted, unlabeled, ...) and ``sha256`` (of the stored file): a re-import matches an
  image by its sha256 first, and takes only submitted images as annotations.

Each box's attributes (occluded, truncated, difficult and the label's own; only what is set) are
in its annotation's ``attributes`` object, as CVAT writes them; an annotation without any has none.

Import reads boxes (with ``attributes``) from ``annotations``, image-level categories from ``image_labels`` and from
annotations without a ``bbox`` (as some tools write classification labels).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any, TypeGuard

from annotator.formats import BoxRecord, ExportMeta, FormatError, ImageRecord, ParsedFile, ParsedImage, base_name
from annotator.formats import optional_str
from annotator.formats import registry

CHUNK = 1 << 16


def write(
    meta: ExportMeta, images: Iterable[ImageRecord], *, predictions: bool = False, batch: int = 2000
) -> Iterator[bytes]:
    """Stream one COCO JSON document. Annotations are spooled to a temporary file while the images
    are written (COCO wants all images before all annotations), so memory stays flat. Entries are
    formatted directly (json.dumps only for strings): this loop is most of an export's time."""
    ids = {name: i for i, name in enumerate(meta.label_names, start=1)}
    categories = [{"id": ids[label.name], "name": label.name, "supercategory": ""} for label in meta.labels]
    head = {"info": {"description": meta.project, "version": "1.0", "contributor": "Twinlabel"}, "licenses": []}
    yield (json.dumps(head)[:-1] + ', "categories": ' + json.dumps(categories) + ', "images": [').encode()
    dumps = json.dumps
    with tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b") as spool:
        entries: list[str] = []
        boxes: list[str] = []
        next_id, images_sep, boxes_sep = 1, "", ""
        for image in images:
            labels = ",".join(str(ids[t]) for t in image.tags)
            entry = (
                f'{{"id":{image.id},"file_name":{dumps(image.file_name)},"width":{image.width},'
                f'"height":{image.height},"image_labels":[{labels}],"status":"{image.status}",'
                f'"sha256":"{image.sha256}"'
            )
            if predictions:
                entry += ',"predictions":' + dumps(
                    [{"category_id": ids[p.label], "score": p.score} for p in image.predictions]
                )
            entries.append(entry + "}")
            image_id = image.id
            for b in image.boxes:
                extra = f',"attributes":{dumps(b.attributes)}' if b.attributes else ""
                boxes.append(
                    f'{{"id":{next_id},"image_id":{image_id},"category_id":{ids[b.label]},'
                    f'"bbox":[{b.x!r},{b.y!r},{b.w!r},{b.h!r}],"area":{b.w * b.h!r},"iscrowd":0{extra}}}'
                )
                next_id += 1
            if len(entries) >= batch:
                yield (images_sep + ",".join(entries)).encode()
                entries, images_sep = [], ","
            if len(boxes) >= batch:
                spool.write((boxes_sep + ",".join(boxes)).encode())
                boxes, boxes_sep = [], ","
        if boxes:
            spool.write((boxes_sep + ",".join(boxes)).encode())
        yield ((images_sep + ",".join(entries)) if entries else "").encode() + b'], "annotations": ['
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk
    yield b"]}\n"


def read(data: bytes) -> ParsedFile:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FormatError(f"The COCO file is not valid JSON ({error}).") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise FormatError("A COCO file is a JSON object with “images”, “annotations” and “categories”.")
    categories: dict[int | str, str] = {}
    for c in _list(doc, "categories"):
        if not isinstance(c, dict) or "id" not in c or not isinstance(c.get("name"), str) or not c["name"].strip():
            raise FormatError(f"COCO category {str(c)[:80]} needs an “id” and a “name”.")
        categories[_id(c["id"], "category")] = c["name"].strip()

    def category(cid: object, where: str) -> str:
        if not _is_id(cid) or cid not in categories:
            raise FormatError(f"{where} refers to category {cid!r}, which “categories” does not define.")
        return categories[cid]

    images: dict[int | str, tuple[str, list[BoxRecord], list[str], str, str]] = {}
    for im in doc["images"]:
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise FormatError(f"COCO image {str(im)[:80]} needs an “id” and a “file_name”.")
        image_id = _id(im["id"], "image")
        tags = [category(c, f"image {image_id}") for c in _list(im, "image_labels")]
        images[image_id] = (
            base_name(im["file_name"]),
            [],
            tags,
            optional_str(im, "sha256"),
            optional_str(im, "status"),
        )
    for i, a in enumerate(_list(doc, "annotations")):
        if not isinstance(a, dict) or not _is_id(a.get("image_id")) or a["image_id"] not in images:
            raise FormatError(f"COCO annotation #{i} refers to an image that “images” does not list.")
        label = category(a.get("category_id"), f"annotation #{i}")
        bbox = a.get("bbox")
        if not bbox:
            images[a["image_id"]][2].append(label)
            continue
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
        ):
            raise FormatError(f"COCO annotation #{i}: “bbox” must be four numbers [x, y, width, height].")
        attributes = a.get("attributes") if isinstance(a.get("attributes"), dict) else None
        x, y, w, h = map(float, bbox)
        images[a["image_id"]][1].append(BoxRecord(label, x, y, w, h, attributes or None))
    parsed = [
        ParsedImage(name, tuple(boxes), tuple(dict.fromkeys(tags)), sha, status)
        for name, boxes, tags, sha, status in images.values()
    ]
    return ParsedFile(images=parsed, labels=list(dict.fromkeys(categories.values())))


def _is_id(value: object) -> TypeGuard[int | str]:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _id(value: object, what: str) -> int | str:
    """COCO ids are integers (some tools write strings); anything else ({} or [1]) is refused here
    rather than failing as an unhashable key."""
    if not _is_id(value):
        raise FormatError(f"A COCO {what} id must be an integer, not {str(value)[:40]}.")
    return value


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise FormatError(f"COCO “{key}” must be a list.")
    return value


@registry.writer("coco", title="COCO", extension="json", media_type="application/json", predictions=True)
def export(meta: ExportMeta, images: Iterable[ImageRecord], options: registry.WriteOptions) -> Iterator[bytes]:
    return write(meta, images, predictions=options.predictions)


@registry.reader("coco", title="COCO JSON", extension="json", media_type="application/json")
def import_files(files: list[tuple[str, bytes]], images: registry.ImageLookup) -> ParsedFile:
    return read(registry.single_file("coco", files))
