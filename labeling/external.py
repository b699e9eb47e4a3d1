"""Predictions of another model, imported as a run of kind ``external``.

The file is read by a pure parser (annotator/formats/predictions.py), each entry is matched to one
of the project's images (by id, sha256, or a file name only one image has; a name several images
share is refused, not guessed), and the tag predictions become the run's suggestions, judged as our
own probe's are: on the submitted images the external scores are evaluated (AP, F1) and fed to the
same calibration and precision-targeted thresholds (labeling/trust.py); the other images get
calibrated suggestions, pre-ticked only at or above their label's threshold. The run is then swapped
in as the project's current suggestions (``ProjectModelState.probe_run``), so they appear in the
annotate page's accept / reject UI, the queue's "uncertain" order and the dashboard; the next probe
fit replaces it, as it replaces an older fit.

All or nothing: one transaction; a file that does not parse, an ambiguous name, an unknown label or a
box outside its image changes nothing. Entries matching no image are reported, not fatal.

Box predictions go the way of our detector's (labeling/detection.py): judged on the submitted images
against their boxes (AP50, then the same precision-targeted thresholds, ``box_thresholds``), stored as
the run's ``BoxSuggestion`` rows for the other images and swapped in whole as the project's current
box suggestions (``ProjectModelState.detector_run``, ``box_suggestions_swap``); the next detector fit
replaces them. A file with boxes only leaves the current tag suggestions as they are.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotator.formats import FormatError, name_candidates, stem
from annotator.formats.predictions import BoxPrediction, ImageRef, PredictionFile, read_predictions
from annotator.models import Image, ImageStatus, Project
from labeling.data import label_matrix
from labeling.detection import box_suggestion_rows, box_suggestions_swap, box_thresholds, boxes_of, shown_cutoffs
from labeling.detection import tagged_without_boxes
from labeling.ml.active import uncertainty
from labeling.ml.metrics import evaluate
from labeling.models import BoxSuggestion, ProjectModelState, RunKind, RunStatus, TrainingRun
from labeling.runs import json_safe_fields, run_finished_emit
from labeling.suggesting import suggestions_refreshed_emit, write_suggestions
from labeling.trust import DEFAULT_TARGET, trust_fit

MIN_EXAMPLES = 3  # positives and negatives a label needs among the submitted images to be judged (as for the probe)
REPORT_NAMES = 50


@dataclass
class PredictionImportReport:
    run_id: int | None = None
    model_version: str = ""
    images: int = 0  # entries matched to an image
    evaluated_images: int = 0  # of them submitted: the truth the thresholds are judged on
    suggestions: int = 0  # rows stored for the other images
    confident: int = 0  # of them pre-ticked (at or above their label's threshold)
    tag_predictions: int = 0
    box_predictions: int = 0
    boxes_stored: int = 0  # box suggestions stored for the images not submitted yet
    boxes_evaluated_images: int = 0
    boxes_confident: int = 0
    boxes_note: str = ""
    unmatched: list[str] = field(default_factory=list)  # the first REPORT_NAMES
    unmatched_count: int = 0
    labels: list[dict] = field(default_factory=list)  # per label: name, AP on the submitted images, threshold
    activated: bool = False

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class _Images:
    """The project's images, indexed the ways an entry may name one."""

    def __init__(self, project: Project):
        self.rows: dict[int, tuple[int, int, str]] = {}  # id -> (width, height, status)
        self.by_sha: dict[str, int] = {}
        self.by_name: dict[str, list[int]] = defaultdict(list)
        self.by_stem: dict[str, list[int]] = defaultdict(list)
        self.ambiguous: set[str] = set()
        rows = Image.objects.filter(project=project).values_list(
            "id", "original_name", "sha256", "width", "height", "status"
        )
        for image_id, name, sha, width, height, status in rows.iterator(chunk_size=5000):
            self.rows[image_id] = (width, height, status)
            self.by_sha[sha] = image_id
            self.by_name[name].append(image_id)
            self.by_stem[stem(name)].append(image_id)

    def find(self, ref: ImageRef) -> int | None:
        if ref.image_id is not None:
            return ref.image_id if ref.image_id in self.rows else None
        if ref.sha256 and ref.sha256 in self.by_sha:
            return self.by_sha[ref.sha256]
        if ref.by_stem:
            return self._one(self.by_stem.get(ref.file_name), f"{ref.file_name}.*")
        for name in name_candidates(ref.file_name) if ref.file_name else []:
            found = self._one(self.by_name.get(name), name)
            if found is not None or name in self.ambiguous:
                return found
        return None

    def _one(self, ids: list[int] | None, name: str) -> int | None:
        if ids and len(ids) > 1:
            self.ambiguous.add(name)
            return None
        return ids[0] if ids else None


def predictions_import(
    *,
    project: Project,
    user: AbstractBaseUser | None,
    fmt: str,
    files: list[tuple[str, bytes]],
    model_version: str = "",
    tags_from_boxes: bool = False,
    activate: bool = True,
) -> PredictionImportReport:
    """Read, match and store a predictions file as an external run (ValidationError: nothing stored).
    ``tags_from_boxes``: also take each image's best box score per label as a tag prediction (a detector
    compared with the probe on image-level labels). ``activate``: make its suggestions the current ones."""
    labels = list(project.labels.order_by("order", "id").values_list("id", "name"))
    try:
        parsed = read_predictions(fmt, files, label_names=[name for _, name in labels])
    except FormatError as error:
        raise ValidationError(str(error)) from None
    except RecursionError:
        raise ValidationError("The file nests lists or objects too deeply to be a predictions file.") from None
    version = (parsed.model_version or model_version).strip()
    if not version:
        raise ValidationError("Say which model made these predictions: give a “model_version”.")
    label_id = {name.casefold(): label for label, name in labels}
    unknown = [name for name in parsed.labels if name.casefold() not in label_id]
    if unknown:
        raise ValidationError(
            f"{len(unknown)} label(s) of the predictions are not labels of this project: {', '.join(unknown[:20])}. "
            "Create them first, or leave their predictions out."
        )
    report = PredictionImportReport(model_version=version[:200])
    images = _Images(project)
    scores, boxes = _match(parsed, images, label_id, tags_from_boxes, report)
    if images.ambiguous:
        names = sorted(images.ambiguous)
        raise ValidationError(
            f"{len(names)} file name(s) belong to more than one image of this project, so the predictions cannot say "
            f"which image they mean: {', '.join(names[:20])}{' …' if len(names) > 20 else ''}. Name the images by "
            "“image_id” or “sha256” instead."
        )
    if not report.images:
        raise ValidationError(
            f"None of the {report.unmatched_count} prediction entries matches an image of this project "
            f"(first: {', '.join(report.unmatched[:5])}). Name images by “image_id”, “sha256” or their file name."
        )
    with transaction.atomic():
        _store(project, user, fmt, scores, images, [label for label, _ in labels], [n for _, n in labels], report)
        run = TrainingRun.objects.get(pk=report.run_id)
        if boxes:
            _store_boxes(run, boxes, list(scores), images, report)
        has_tags = report.tag_predictions > 0 or (tags_from_boxes and report.box_predictions > 0)
        if activate and has_tags:
            ProjectModelState.objects.update_or_create(project=project, defaults={"probe_run_id": run.id})
        if activate and boxes:
            box_suggestions_swap(run=run)
        report.activated = activate and (has_tags or bool(boxes))
        run_finished_emit(run_id=run.id)
        if report.activated:
            suggestions_refreshed_emit(project_id=project.id, run_id=run.id)
    return report


def _match(
    parsed: PredictionFile,
    images: _Images,
    label_id: dict[str, int],
    tags_from_boxes: bool,
    report: PredictionImportReport,
) -> tuple[dict[int, dict[int, float]], dict[int, list[tuple[int, float, float, float, float, float]]]]:
    """-> (image id -> label id -> score, the best when an image or label appears twice;
    image id -> its boxes as (label id, x, y, w, h in image pixels, score))."""
    scores: dict[int, dict[int, float]] = defaultdict(dict)
    boxes: dict[int, list[tuple[int, float, float, float, float, float]]] = defaultdict(list)
    bad_boxes: list[str] = []
    for entry in parsed.images:
        image_id = images.find(entry.ref)
        if image_id is None:
            report.unmatched_count += 1
            if len(report.unmatched) < REPORT_NAMES:
                report.unmatched.append(entry.ref.describe())
            continue
        report.images += 1
        width, height, _ = images.rows[image_id]
        tags = [(p.label, p.score) for p in entry.tags]
        for box in entry.boxes:
            if not _fits(box, width, height):
                bad_boxes.append(f"{entry.ref.describe()} ({box.label})")
            boxes[image_id].append((label_id[box.label.casefold()], *_pixels(box, width, height), box.score))
            if tags_from_boxes:
                tags.append((box.label, box.score))
        row = scores[image_id]
        for name, score in tags:
            column = label_id[name.casefold()]
            row[column] = max(score, row.get(column, 0.0))
        report.tag_predictions += len(entry.tags)
        report.box_predictions += len(entry.boxes)
    if bad_boxes:
        raise ValidationError(
            f"{len(bad_boxes)} box prediction(s) lie outside their image: {', '.join(bad_boxes[:10])}"
            f"{' …' if len(bad_boxes) > 10 else ''}."
        )
    return scores, boxes


def _fits(box: BoxPrediction, width: int, height: int, slack: float = 1.0) -> bool:
    """A box may overhang its image by a pixel (detectors round); one outside it means the wrong image or units."""
    x, y, w, h = _pixels(box, width, height)
    return x >= -slack and y >= -slack and x + w <= width + slack and y + h <= height + slack


def _pixels(box: BoxPrediction, width: int, height: int) -> tuple[float, float, float, float]:
    if box.normalised:
        return box.x * width, box.y * height, box.w * width, box.h * height
    return box.x, box.y, box.w, box.h


def _store(
    project: Project,
    user: AbstractBaseUser | None,
    fmt: str,
    scores: dict[int, dict[int, float]],
    images: _Images,
    label_ids: list[int],
    names: list[str],
    report: PredictionImportReport,
) -> None:
    """The run, its evaluation on the submitted images, and its suggestions for the others."""
    used = sorted({label for row in scores.values() for label in row})
    columns = np.array([label_ids.index(label) for label in used], dtype=np.int64)
    ids = np.array(sorted(scores), dtype=np.int64)
    matrix = np.zeros((len(ids), len(label_ids)), dtype=np.float64)  # a label the file scores elsewhere: 0 here
    for n, image_id in enumerate(ids.tolist()):
        for label, score in scores[image_id].items():
            matrix[n, label_ids.index(label)] = score
    submitted = np.array([images.rows[i][2] == ImageStatus.SUBMITTED for i in ids.tolist()], dtype=bool)
    metrics, calibrated, thresholds = _evaluate(project, ids[submitted], matrix[submitted], columns, label_ids, names)
    now = timezone.now()
    run = TrainingRun.objects.create(
        project=project,
        kind=RunKind.EXTERNAL,
        status=RunStatus.SUCCEEDED,
        created_by=user if user is not None and user.is_authenticated else None,
        config={"model_version": report.model_version, "format": fmt},
        device=f"external: {report.model_version}"[:100],
        started_at=now,
        finished_at=now,
    )
    report.run_id, report.evaluated_images = run.id, int(submitted.sum())
    pool, raw = ids[~submitted], matrix[~submitted]
    probs = calibrated(raw)
    used_mask = np.zeros(len(label_ids), dtype=bool)
    used_mask[columns] = True
    report.suggestions = write_suggestions(
        run_id=run.id,
        pool=pool,
        label_ids=np.array(label_ids, dtype=np.int64),
        probs=probs,
        thresholds=thresholds,
        trained=used_mask,
        scores=uncertainty(probs[:, used_mask], thresholds[used_mask]) if len(pool) else np.zeros(0),
    )
    report.confident = int((probs[:, used_mask] >= thresholds[used_mask]).sum())
    report.labels = [
        {k: e.get(k) for k in ("label", "label_id", "trained", "positives", "threshold", "confident", "near_chance")}
        for e in metrics.get("trust", {}).get("labels", [])
    ]
    metrics["imported"] = {k: v for k, v in report.as_dict().items() if k not in ("labels", "unmatched")}
    TrainingRun.objects.filter(pk=run.id).update(**json_safe_fields({"metrics": metrics}))


def _store_boxes(
    run: TrainingRun,
    boxes: dict[int, list[tuple[int, float, float, float, float, float]]],
    matched: list[int],
    images: _Images,
    report: PredictionImportReport,
) -> None:
    """The box predictions judged as our detector's held-out detections are: on the submitted images
    of the file (an image with no predicted box: the model found nothing there), against their boxes,
    by ``box_thresholds``; then stored as the run's box suggestions for the other images."""
    classes = sorted({row[0] for rows in boxes.values() for row in rows})
    column = {label: k for k, label in enumerate(classes)}
    submitted = np.array([i for i in matched if images.rows[i][2] == ImageStatus.SUBMITTED], dtype=np.int64)
    truth = boxes_of(submitted)
    left_out = tagged_without_boxes(submitted, classes, truth)
    judged = [i for i in submitted.tolist() if i not in left_out]
    found, truth_boxes, truth_labels = [], [], []
    for image_id in judged:
        found.append(_detections(boxes.get(image_id, []), column))
        known = [r for r in truth.get(image_id, []) if r[0] in column]
        truth_boxes.append(np.array([r[1:] for r in known], dtype=np.float32).reshape(-1, 4))
        truth_labels.append(np.array([column[r[0]] for r in known], dtype=np.int64))
    thresholds, metrics = box_thresholds(
        project_id=run.project_id,
        classes=classes,
        found=found,
        truth_boxes=truth_boxes,
        truth_labels=truth_labels,
        labeled_ids=submitted,
    )
    shown_from = shown_cutoffs(metrics["trust"], len(classes))
    rows = []
    for image_id, predicted in boxes.items():
        width, height, status = images.rows[image_id]
        if status != ImageStatus.SUBMITTED:
            rows += box_suggestion_rows(
                run=run,
                image_id=image_id,
                found=_detections(predicted, column),
                classes=classes,
                thresholds=thresholds,
                shown_from=shown_from,
                size=(width, height),
            )
    BoxSuggestion.objects.bulk_create(rows, batch_size=5000)
    report.boxes_stored = len(rows)
    report.boxes_evaluated_images = len(judged)
    report.boxes_confident = sum(r.predicted for r in rows)
    report.boxes_note = (
        f"{len(rows)} box suggestion(s) stored for the images not submitted yet; judged on {len(judged)} "
        f"submitted image(s) (mAP50 {metrics['map50']:.2f})."
        if metrics["map50"] is not None
        else f"{len(rows)} box suggestion(s) stored; none judged (no submitted image with boxes among the "
        "predictions), so none is pre-ticked."
    )
    run.metrics = {**run.metrics, "boxes": {**metrics, "evaluated_images": len(judged)}}
    TrainingRun.objects.filter(pk=run.id).update(**json_safe_fields({"metrics": run.metrics}))


def _detections(rows: list[tuple[int, float, float, float, float, float]], column: dict[int, int]):
    """One image's (label id, x, y, w, h, score) rows -> Detections, best first (as match_detections
    wants), labels as the class indices ``column`` gives. Float64, not the detector's float32: the
    imported numbers are stored as the file gives them (0.6 stays 0.6)."""
    from labeling.ml.detector import Detections

    rows = sorted(rows, key=lambda r: -r[5])
    return Detections(
        boxes=np.array([r[1:5] for r in rows], dtype=np.float64).reshape(-1, 4),
        scores=np.array([r[5] for r in rows], dtype=np.float64),
        labels=np.array([column[r[0]] for r in rows], dtype=np.int64),
    )


def _evaluate(project: Project, labeled: np.ndarray, scores: np.ndarray, columns: np.ndarray, label_ids, names):
    """The external scores judged on the submitted images, as a probe's out-of-fold scores are: AP and
    F1 (at 0.5) per label, then the calibration and thresholds of labeling/trust.py.
    -> (metrics, calibration function, (L,) thresholds: +inf where a label is not confident)."""
    label_array = np.array(label_ids, dtype=np.int64)
    y = label_matrix(labeled.tolist(), label_array) if len(labeled) else np.zeros((0, len(label_ids)), np.float32)
    positives = y.sum(axis=0).astype(np.int64)
    judged = np.zeros(len(label_ids), dtype=bool)
    judged[columns] = (positives[columns] >= MIN_EXAMPLES) & (len(labeled) - positives[columns] >= MIN_EXAMPLES)
    metrics: dict = {"labeled": len(labeled), "external": True}
    if not judged.any():
        message = (
            f"Not judged: no predicted label has {MIN_EXAMPLES} positive and {MIN_EXAMPLES} negative submitted images "
            "among the predictions, so none is pre-ticked; they are shown as ranked probabilities."
        )
        metrics["trust"] = {
            "default_target": DEFAULT_TARGET,
            "labels": [
                {
                    "label": names[j],
                    "label_id": label_ids[j],
                    "trained": False,
                    "positives": int(positives[j]),
                    "confident": False,
                    "threshold": None,
                    "near_chance": True,
                }
                for j in columns.tolist()
            ],
            "still_learning": message,
        }
        return metrics, lambda raw: raw, np.full(len(label_ids), np.inf)
    t = np.flatnonzero(judged)
    cv = evaluate(y[:, t], scores[:, t], np.full(len(t), 0.5)).to_dict()
    metrics["cv"] = {**cv, "labels": [names[j] for j in t.tolist()]}
    platt, thresholds, metrics["trust"] = trust_fit(
        project_id=project.id,
        y=y,
        oof=scores,
        trained=judged,
        ap=cv["ap"],
        label_ids=label_array,
        names=list(names),
        labeled_ids=labeled,
        positives=positives,
        pool_decisions=False,
    )
    metrics["trust"]["labels"] = [
        e for e in metrics["trust"]["labels"] if e["label_id"] in set(label_array[columns].tolist())
    ]
    return metrics, platt.apply, thresholds
