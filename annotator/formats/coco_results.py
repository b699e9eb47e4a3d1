"""COCO's results format: the detector's suggested boxes with their scores, as COCO's evaluators
(pycocotools' ``COCO.loadRes``, faster-coco-eval) read them:

    [{"image_id", "category_id", "bbox": [x, y, width, height], "score"}, ...]

Ids are those of Twinlabel's COCO export of the same project (image ids are ours; category ids
number the labels from 1 in the project's order), so a results file scores against that export.
Written only with predictions (``predictions=<min score>``); there is nothing to read back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from annotator.formats import ExportMeta, ImageRecord
from annotator.formats import registry

BATCH = 2000


def write(meta: ExportMeta, images: Iterable[ImageRecord]) -> Iterator[bytes]:
    ids = {name: i for i, name in enumerate(meta.label_names, start=1)}
    rows: list[str] = []
    sep = ""
    yield b"["
    for image in images:
        for b in image.box_predictions:
            rows.append(
                f'{{"image_id":{image.id},"category_id":{ids[b.label]},'
                f'"bbox":[{b.x!r},{b.y!r},{b.w!r},{b.h!r}],"score":{b.score!r}}}'
            )
        if len(rows) >= BATCH:
            yield (sep + ",".join(rows)).encode()
            rows, sep = [], ","
    yield ((sep + ",".join(rows)) if rows else "").encode() + b"]\n"


@registry.writer(
    "coco_results",
    title="COCO results (box predictions)",
    extension="json",
    media_type="application/json",
    predictions=True,
)
def export(meta: ExportMeta, images: Iterable[ImageRecord], options: registry.WriteOptions) -> Iterator[bytes]:
    return write(meta, images)
