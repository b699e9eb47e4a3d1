"""Pascal VOC: one XML file per image (Annotations/<stem>.xml), as the VOC development kit defines
it: folder, filename, size (width, height, depth), segmented, and per box an ``object`` with name,
pose, truncated, difficult and ``bndbox`` in 1-based integer pixel corners (xmin = x + 1,
xmax = x + w). ``truncated`` and ``difficult`` are the box's attributes (0 or 1), and an ``occluded``
element follows them, as CVAT writes it. VOC has no image-level labels in its XML; use COCO, CSV or JSON for those."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.sax.saxutils import escape

from annotator.formats import ExportMeta, ImageRecord, stem
from annotator.formats.zipstream import zip_stream


def image_xml(image: ImageRecord, *, folder: str = "images") -> bytes:
    objects = "".join(
        "<object><name>{}</name><pose>Unspecified</pose><truncated>{}</truncated><difficult>{}</difficult>"
        "<occluded>{}</occluded>"
        "<bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>".format(
            escape(b.label), *_flags(b.attributes), round(b.x) + 1, round(b.y) + 1,
            max(round(b.x + b.w), round(b.x) + 1), max(round(b.y + b.h), round(b.y) + 1))
        for b in image.boxes)
    return (f"<annotation><folder>{escape(folder)}</folder><filename>{escape(image.file_name)}</filename>"
            f"<source><database>Twinlabel</database></source>"
            f"<size><width>{image.width}</width><height>{image.height}</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{objects}</annotation>\n").encode()


def _flags(attributes: dict | None) -> tuple[int, int, int]:
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
