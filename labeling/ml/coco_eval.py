"""Box quality by COCO's own evaluator (pycocotools' COCOeval), not a home-made one: AP50 and
mAP@[.5:.95] over all classes and per class, from detections and truth boxes in image pixels.

Per class, COCOeval's accumulated precision (T IoU thresholds x 101 recall points x K classes x 4
areas x 3 max-detection limits) is averaged over the recall points as COCO's summary does, at area
"all" and 100 detections per image: at IoU 0.5 for AP50, over every threshold for mAP. A class with
no truth box in the set has no AP (None), as in COCO (-1 there).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CocoScores:
    ap50: float | None  # over the classes with a truth box
    map: float | None  # mAP@[.5:.95]
    class_ap50: list[float | None]
    class_map: list[float | None]

    def as_dict(self, names: Sequence[str]) -> dict[str, Any]:
        return {
            "ap50": self.ap50,
            "map": self.map,
            "labels": {n: {"ap50": a, "map": m} for n, a, m in zip(names, self.class_ap50, self.class_map)},
            "evaluator": "pycocotools COCOeval (bbox)",
        }


def coco_scores(
    sizes: Sequence[tuple[int, int]],
    truth_boxes: Sequence[npt.ArrayLike],
    truth_labels: Sequence[npt.ArrayLike],
    found_boxes: Sequence[npt.ArrayLike],
    found_scores: Sequence[npt.ArrayLike],
    found_labels: Sequence[npt.ArrayLike],
    classes: int,
) -> CocoScores | None:
    """Per image: its (width, height), truth boxes (x, y, w, h pixels) and class indices, detections
    with scores; -> the scores, or None where pycocotools is not installed."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return None
    annotations: list[dict[str, Any]] = []
    for i, (boxes, labels) in enumerate(zip(truth_boxes, truth_labels)):
        for b, c in zip(np.asarray(boxes, np.float64).reshape(-1, 4).tolist(), np.asarray(labels).reshape(-1)):
            row = {"id": len(annotations) + 1, "image_id": i, "category_id": int(c), "bbox": b, "area": b[2] * b[3]}
            annotations.append({**row, "iscrowd": 0})
    results = [
        {"image_id": i, "category_id": int(c), "bbox": b, "score": float(s)}
        for i, (boxes, scores, labels) in enumerate(zip(found_boxes, found_scores, found_labels))
        for b, s, c in zip(
            np.asarray(boxes, np.float64).reshape(-1, 4).tolist(),
            np.asarray(scores).reshape(-1),
            np.asarray(labels).reshape(-1),
        )
    ]
    has_truth = [any(a["category_id"] == k for a in annotations) for k in range(classes)]
    if not any(has_truth):
        return CocoScores(None, None, [None] * classes, [None] * classes)
    if not results:
        zero = [0.0 if t else None for t in has_truth]
        return CocoScores(0.0, 0.0, zero, list(zero))
    with contextlib.redirect_stdout(io.StringIO()):  # COCO prints progress
        truth = COCO()
        truth.dataset = {
            "images": [{"id": i, "width": w, "height": h} for i, (w, h) in enumerate(sizes)],
            "categories": [{"id": k} for k in range(classes)],
            "annotations": annotations,
        }
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = np.asarray(evaluation.eval["precision"])  # (T, R, K, A, M); -1 where undefined
    class_ap50 = [_mean(precision[0, :, k, 0, -1]) for k in range(classes)]
    class_map = [_mean(precision[:, :, k, 0, -1]) for k in range(classes)]
    return CocoScores(float(evaluation.stats[1]), float(evaluation.stats[0]), class_ap50, class_map)


def _mean(values: npt.NDArray[np.float64]) -> float | None:
    defined = values[values > -1]
    return float(defined.mean()) if defined.size else None
