"""Label Studio's JSON export (a list of tasks), the migration path for Label Studio users.

Per task: ``data.image`` names the image (an upload path such as ``/data/upload/3/1a2b3c4d-cat.png``;
Label Studio prefixes uploads with 8 hex digits, which matching ignores); the last annotation that
was not cancelled counts. Its results:

- ``rectanglelabels``: ``value.x, y, width, height`` in **percent** of the image, converted to
  pixels with ``original_width``/``original_height`` (or the project image's size); a rotated
  rectangle becomes the axis-aligned box around it;
- ``choices``: ``value.choices``, one or several image-level labels.

Other result types (polygons, text, ...) are counted and skipped, not silently dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from annotator.formats import BoxRecord, FormatError, ParsedFile, ParsedImage, name_candidates
from annotator.formats import registry


@dataclass
class LabelStudioFile(ParsedFile):
    skipped_results: int = 0


def read(data: bytes, size_of: Callable[[list[str]], tuple[int, int] | None]) -> LabelStudioFile:
    """``size_of(candidate names)``: the project image's (width, height), used when a result has no
    original size."""
    try:
        tasks = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FormatError(f"The Label Studio file is not valid JSON ({error}).") from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise FormatError("A Label Studio JSON export is a list of tasks.")
    parsed = LabelStudioFile()
    labels: dict[str, None] = {}
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise FormatError(f"Task #{i} has no “data”.")
        path = next((v for v in task["data"].values() if isinstance(v, str)), None)
        if path is None:
            raise FormatError(f"Task #{i}: “data” names no image.")
        names = name_candidates(path)
        annotation = _last_annotation(task, i)
        boxes, tags = [], []
        results = annotation.get("result") or [] if annotation else []
        if not isinstance(results, list):
            raise FormatError(f"Task #{i}: “result” must be a list of results.")
        for result in results:
            if not isinstance(result, dict) or not isinstance(result.get("value") or {}, dict):
                raise FormatError(
                    f"Task #{i}: each result must be an object with a “value” object, not {str(result)[:40]}."
                )
            kind, value = result.get("type"), result.get("value") or {}
            if kind == "rectanglelabels":
                for label in _names(value, "rectanglelabels", i):
                    boxes.append(_box(result, value, label, lambda: size_of(names), f"task #{i}"))
                    labels[label] = None
            elif kind == "choices":
                for label in _names(value, "choices", i):
                    tags.append(label)
                    labels[label] = None
            else:
                parsed.skipped_results += 1
        # Matching tries the name with and without Label Studio's upload prefix (name_candidates).
        parsed.images.append(ParsedImage(names[0], tuple(boxes), tuple(dict.fromkeys(tags))))
    parsed.labels = list(labels)
    return parsed


def _names(value: dict[str, Any], key: str, i: int) -> list[str]:
    names = value.get(key) or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FormatError(f"Task #{i}: “{key}” must be a list of label names (text), not {str(names)[:40]}.")
    return names


def _last_annotation(task: dict[str, Any], i: int) -> dict[str, Any] | None:
    annotations = task.get("annotations") or task.get("completions") or []
    if not isinstance(annotations, list):
        raise FormatError(f"Task #{i}: “annotations” must be a list.")
    kept = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    return kept[-1] if kept else None


def _box(
    result: dict[str, Any], value: dict[str, Any], label: str, size: Callable[[], tuple[int, int] | None], where: str
) -> BoxRecord:
    try:
        x, y, w, h = (float(value[k]) for k in ("x", "y", "width", "height"))
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"{where}: a rectangle needs numbers x, y, width, height.") from None
    width, height = result.get("original_width"), result.get("original_height")
    if not width or not height:
        found = size()
        if found is None:
            return BoxRecord(label, 0, 0, 0, 0)  # the image is not in the project: reported as unmatched
        width, height = found
    x, y, w, h = x * width / 100, y * height / 100, w * width / 100, h * height / 100
    rotation = float(value.get("rotation") or 0)
    if rotation:
        # Label Studio rotates around the top-left corner, clockwise in screen coordinates.
        a = math.radians(rotation)
        corners = [
            (x + dx * math.cos(a) - dy * math.sin(a), y + dx * math.sin(a) + dy * math.cos(a))
            for dx, dy in ((0, 0), (w, 0), (0, h), (w, h))
        ]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    return BoxRecord(label, x, y, w, h)


@registry.reader("labelstudio", title="Label Studio JSON", extension="json", media_type="application/json")
def import_files(files: list[tuple[str, bytes]], images: registry.ImageLookup) -> ParsedFile:
    def size_of(names: list[str]) -> tuple[int, int] | None:
        found = next((f for n in names if (f := images.find(n))), None)
        return (found[1], found[2]) if found else None

    return read(registry.single_file("labelstudio", files), size_of)
