"""CSV multilabel: one row per image, ``file_name,width,height`` then a 0/1 column per label
(1 when the image has the label as a tag or as a box class). With predictions, a
``<label>_score`` column per label follows, holding the model's probability (empty below the
threshold or when there is none). Text cells that a spreadsheet would run as a formula (starting
with = + - @, tab or carriage return) are written with a leading apostrophe."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from annotator.formats import ExportMeta, ImageRecord
from annotator.formats import registry


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection"):
# such text cells get a leading apostrophe, which spreadsheets show as text and hide.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def write(
    meta: ExportMeta, images: Iterable[ImageRecord], *, predictions: bool = False, rows_per_chunk: int = 1000
) -> Iterator[bytes]:
    names = meta.label_names
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    header = ["file_name", "width", "height", *map(cell, names)]
    if predictions:
        header += [cell(f"{n}_score") for n in names]
    out.writerow(header)
    for count, image in enumerate(images, start=1):
        present = image.labels
        row = [cell(image.file_name), image.width, image.height, *(1 if n in present else 0 for n in names)]
        if predictions:
            scores = {p.label: p.score for p in image.predictions}
            row += [repr(scores[n]) if n in scores else "" for n in names]  # full precision: no ties
        out.writerow(row)
        if count % rows_per_chunk == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


@registry.writer("csv", title="CSV", extension="csv", media_type="text/csv", predictions=True)
def export(meta: ExportMeta, images: Iterable[ImageRecord], options: registry.WriteOptions) -> Iterator[bytes]:
    return write(meta, images, predictions=options.predictions)
