"""YOLO (Ultralytics) detection labels: ``labels/<stem>.txt`` with one line per box,
``class cx cy w h`` normalised to [0, 1] by the image size, and ``data.yaml`` with the class names.
With the images (``images/<stem>.<ext>`` beside ``labels/<stem>.txt``, the layout Ultralytics pairs
them by), ``data.yaml``'s ``train``/``val`` point to them and the zip trains as it is; without them,
``data.yaml`` says where the images must be put.

The class list holds the labels used by boxes only (image-level tags are no detection classes).
With predictions (``predictions=<min score>``), the detector's suggested boxes go to
``predictions/<stem>.txt`` (images with any), one ``class cx cy w h conf`` line each: Ultralytics'
own ``save_conf`` layout, so they sit beside the labels as its predictions would; the class list
then goes on with the project's other labels (a suggested class nobody boxed yet), after the boxed
ones, whose ids stay as without predictions.
Import takes the label files and the names (``data.yaml``, or ``classes.txt`` one per line);
normalised coordinates become pixels with the sizes of the project's images.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping

import yaml

from annotator.formats import BoxRecord, ExportMeta, FormatError, ImageRecord, ParsedFile, ParsedImage, stem
from annotator.formats.zipstream import zip_stream
from annotator.formats import registry


def label_lines(image: ImageRecord, class_ids: Mapping[str, int]) -> bytes:
    w, h = image.width, image.height
    return "".join(
        f"{class_ids[b.label]} {(b.x + b.w / 2) / w:.6f} {(b.y + b.h / 2) / h:.6f} {b.w / w:.6f} {b.h / h:.6f}\n"
        for b in image.boxes
    ).encode()


def prediction_lines(image: ImageRecord, class_ids: Mapping[str, int]) -> bytes:
    w, h = image.width, image.height
    return "".join(
        f"{class_ids[b.label]} {(b.x + b.w / 2) / w:.6f} {(b.y + b.h / 2) / h:.6f} {b.w / w:.6f} {b.h / h:.6f}"
        f" {b.score:.6f}\n"
        for b in image.box_predictions
    ).encode()


def data_yaml(names: list[str], *, with_images: bool = True, predictions: bool = False) -> bytes:
    lines = ["# Twinlabel export: labels/*.txt hold one 'class cx cy w h' line per box, normalised to [0, 1]."]
    if predictions:
        lines.append("# predictions/*.txt: the model's suggested boxes, one 'class cx cy w h confidence' line each.")
    if not with_images:
        lines += [
            "# The images are not in this zip: put them in images/ beside labels/ (same file stems),",
            "# or export with images=1 to get them here.",
        ]
    lines += ["path: .  # this folder, once unzipped", "train: images", "val: images", f"nc: {len(names)}", "names:"]
    lines += [f"  {i}: {json.dumps(name)}" for i, name in enumerate(names)]
    return ("\n".join(lines) + "\n").encode()


def write(
    meta: ExportMeta,
    images: Iterable[ImageRecord],
    image_file: Callable[[ImageRecord], bytes] | None = None,
    predictions: bool = False,
) -> Iterator[bytes]:
    """``image_file``: the stored bytes of an image, to put the images in the zip too;
    ``predictions``: the images' box predictions in predictions/ too."""
    names = list(meta.box_labels)
    if predictions:
        names += [name for name in meta.label_names if name not in set(meta.box_labels)]
    class_ids = {name: i for i, name in enumerate(names)}

    def members() -> Iterator[tuple[str, bytes]]:
        yield "data.yaml", data_yaml(names, with_images=image_file is not None, predictions=predictions)
        seen: set[str] = set()
        for image in images:
            base = stem(image.file_name)
            if base in seen:  # two images of one stem: the second keeps its id, for both its files
                base = f"{base}-{image.id}"
            seen.add(base)
            if image_file is not None:
                yield f"images/{base}{_suffix(image.stored or image.file_name)}", image_file(image)
            yield f"labels/{base}.txt", label_lines(image, class_ids)
            if predictions and image.box_predictions:
                yield f"predictions/{base}.txt", prediction_lines(image, class_ids)

    return zip_stream(members())


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > name.rfind("/") else ""


def read_names(name: str, data: bytes) -> list[str]:
    """Class names from ``data.yaml`` (a list or an index mapping) or ``classes.txt``."""
    text = _text(name, data)
    if not name.endswith((".yaml", ".yml")):
        return [line.strip() for line in text.splitlines() if line.strip()]
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise FormatError(f"{name} is not valid YAML ({error}).") from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise FormatError(f"{name} needs “names”: a list of class names or a mapping from class id to name.")
    return [n.strip() for n in names]


def read(
    files: Mapping[str, bytes], names: list[str], image_for: Callable[[str], tuple[str, int, int] | None]
) -> ParsedFile:
    """``files``: label file name → contents; ``image_for(stem)``: the (file name, width, height) of
    the project image with that stem, or None (the label file is then reported as unmatched)."""
    images = []
    for file_name, data in files.items():
        found = image_for(stem(file_name))
        if found is None:
            images.append(ParsedImage(file_name))
            continue
        image_name, width, height = found
        boxes = []
        for number, line in enumerate(_text(file_name, data).splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split()
            try:
                cls, values = int(fields[0]), [float(v) for v in fields[1:]]
            except (ValueError, IndexError):
                raise FormatError(f"{file_name} line {number}: expected “class cx cy w h”.") from None
            if len(values) != 4 or not 0 <= cls < len(names):
                raise FormatError(
                    f"{file_name} line {number}: expected “class cx cy w h” with a class id from 0 to {len(names) - 1}."
                )
            cx, cy, w, h = values
            if not all(0 <= v <= 1 for v in values):
                raise FormatError(f"{file_name} line {number}: coordinates must be normalised to [0, 1].")
            boxes.append(BoxRecord(names[cls], (cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height))
        images.append(ParsedImage(image_name, tuple(boxes)))
    return ParsedFile(images=images, labels=list(names))


def _text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormatError(f"{name} is not UTF-8 text.") from None


@registry.writer("yolo", title="YOLO", extension="zip", media_type="application/zip", images=True, predictions=True)
def export(meta: ExportMeta, images: Iterable[ImageRecord], options: registry.WriteOptions) -> Iterator[bytes]:
    return write(meta, images, options.image_file, predictions=options.predictions)


NAMES_FILES = ("data.yaml", "data.yml", "classes.txt", "obj.names")


@registry.reader("yolo", title="YOLO (label files + data.yaml, or a zip)", extension="txt", media_type="text/plain")
def import_files(files: list[tuple[str, bytes]], images: registry.ImageLookup) -> ParsedFile:
    """The label files and one names file (data.yaml or classes.txt); label files are matched to the
    project's images by stem."""
    names_files = [(n, d) for n, d in files if n.rsplit("/", 1)[-1] in NAMES_FILES]
    if not names_files:
        raise FormatError("A YOLO import needs the class names: add data.yaml or classes.txt.")
    names = read_names(*names_files[0])
    labels = {n: d for n, d in files if n.endswith(".txt") and (n, d) not in names_files}
    return read(labels, names, images.find_stem)
