"""Pascal VOC: one XML file per image (Annotations/<stem>.xml), as the VOC development kit defines
it: folder, filename, size (width, height, depth), segmented, and per box an ``object`` with name,
pose, truncated, difficult and ``bndbox`` in 1-based integer pixel corners (xmin = x + 1,
xmax = x + w). ``truncated`` and ``difficult`` are the box's attributes (0 or 1), and an ``occluded``
element follows them, as CVAT writes it. VOC has no image-level labels in its XML; use COCO, CSV or JSON for those.

Import reads every ``*.xml`` of the upload (a zip of Annotations/ or the files themselves): the
image by ``filename``, and per object its ``name``, ``bndbox`` (back to pixels: x = xmin - 1,
w = xmax - xmin + 1) and the truncated / difficult / occluded flags as the box's attributes. XML
with a DOCTYPE is refused (no entity expansion, no external entities)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from annotator.formats import BoxRecord, ExportMeta, FormatError, ImageRecord, ParsedFile, ParsedImage, base_name, stem
from annotator.formats.zipstream import zip_stream
from annotator.formats import registry


def image_xml(image: ImageRecord, *, folder: str = "images") -> bytes:
    objects = "".join(
        "<object><name>{}</name><pose>Unspecified</pose><truncated>{}</truncated><difficult>{}</difficult>"
        "<occluded>{}</occluded>"
        "<bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>".format(
            escape(b.label),
            *_flags(b.attributes),
            round(b.x) + 1,
            round(b.y) + 1,
            max(round(b.x + b.w), round(b.x) + 1),
            max(round(b.y + b.h), round(b.y) + 1),
        )
        for b in image.boxes
    )
    return (
        f"<annotation><folder>{escape(folder)}</folder><filename>{escape(image.file_name)}</filename>"
        f"<source><database>Twinlabel</database></source>"
        f"<size><width>{image.width}</width><height>{image.height}</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{objects}</annotation>\n"
    ).encode()


def _flags(attributes: dict[str, Any] | None) -> tuple[int, int, int]:
    a = attributes or {}
    return int(bool(a.get("truncated"))), int(bool(a.get("difficult"))), int(bool(a.get("occluded")))


def member_name(image: ImageRecord) -> str:
    # Two images may share a stem (a.png, a.jpg): the id keeps the XML names apart.
    return f"Annotations/{stem(image.file_name)}.xml"


def write(meta: ExportMeta, images: Iterable[ImageRecord]) -> Iterator[bytes]:
    def members() -> Iterator[tuple[str, bytes]]:
        seen: set[str] = set()
        for image in images:
            name = member_name(image)
            if name in seen:
                name = f"Annotations/{stem(image.file_name)}-{image.id}.xml"
            seen.add(name)
            yield name, image_xml(image)
        yield "labels.txt", "".join(f"{n}\n" for n in meta.label_names).encode()

    return zip_stream(members())


FLAGS = ("truncated", "difficult", "occluded")


def read(files: Iterable[tuple[str, bytes]]) -> ParsedFile:
    """``files``: (name, contents) of the upload; the ``.xml`` ones are read, one image each."""
    images, labels = [], []
    for name, data in files:
        if not name.lower().endswith(".xml"):
            continue
        image = _read_one(base_name(name), data)
        images.append(image)
        labels += [b.label for b in image.boxes if b.label not in labels]
    if not images:
        raise FormatError("A Pascal VOC import needs the XML files (Annotations/<name>.xml), or a zip of them.")
    return ParsedFile(images=images, labels=labels)


def _read_one(where: str, data: bytes) -> ParsedImage:
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        raise FormatError(f"{where}: a DOCTYPE or entity declaration is not allowed in a VOC file.")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise FormatError(f"{where} is not valid XML ({error}).") from None
    file_name = (root.findtext("filename") or "").strip()
    if root.tag != "annotation" or not file_name:
        raise FormatError(f"{where}: a VOC file is an <annotation> with a <filename>.")
    boxes = []
    for i, obj in enumerate(root.iter("object")):
        label = (obj.findtext("name") or "").strip()
        try:
            xmin, ymin, xmax, ymax = (
                float(obj.findtext(f"bndbox/{k}") or "") for k in ("xmin", "ymin", "xmax", "ymax")
            )
        except ValueError:
            raise FormatError(f"{where}, object #{i}: needs a <name> and a <bndbox> of four numbers.") from None
        if not label or xmax < xmin or ymax < ymin:
            raise FormatError(f"{where}, object #{i}: needs a <name> and a <bndbox> with xmin <= xmax, ymin <= ymax.")
        attributes = {flag: True for flag in FLAGS if (obj.findtext(flag) or "0").strip() in ("1", "true")}
        boxes.append(BoxRecord(label, xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1, attributes or None))
    return ParsedImage(base_name(file_name), tuple(boxes))


@registry.writer("voc", title="Pascal VOC", extension="zip", media_type="application/zip")
def export(meta: ExportMeta, images: Iterable[ImageRecord], options: registry.WriteOptions) -> Iterator[bytes]:
    return write(meta, images)


@registry.reader("voc", title="Pascal VOC (XML files, or a zip)", extension="xml", media_type="application/xml")
def import_files(files: list[tuple[str, bytes]], images: registry.ImageLookup) -> ParsedFile:
    return read(files)
