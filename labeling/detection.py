"""A detector run on a worker: claim it, train a box detector (labeling.ml.detector) on the submitted
images with boxes, choose each label's confident threshold on held-out images, suggest boxes for
every image not submitted yet, and swap the new box suggestions in whole.

- What a run trains on is fixed at its first claim and kept in its config ("plan": the training and
  held-out image ids and the classes), so a run resumed after its worker died (from the checkpoint
  the trainer writes every few steps) trains the same model on the same images.
- An image submitted with no box of a label is a negative for that label. An image that carries a
  label as a tag but has no box of it is left out: whether its objects were boxed is unknown.
- Held out: about a fifth of the images (by a hash of the id, so the split is stable), from
  HOLD_OUT_FROM images with boxes; their detections decide the thresholds by the tag suggestions'
  rule (labeling.trust.box_trust). With fewer images nothing is held out and nothing is confident.
- Each suggested image gets the run's box doubt (labeling.ml.active.box_uncertainty) as an
  ImageUncertainty row of the detector run; the swap raises the current probe's rows to it, so the
  "most uncertain first" order weighs boxes and tags alike (``merge_box_uncertainty``).
- A long fit does not hold the worker: past TRAINING_SLICE_S seconds of training, when other runs
  wait (``runs.others_waiting``), it stops at a checkpoint, its run goes back to the queue
  (``runs.paused``) and is sent again a little later (``send_later``); claimed again, it resumes from
  the checkpoint with the time it has left.
- The submitted images a fit trains and judges on are letterboxed once into the project's detector
  cache (one store per input size, labeling.ml.cache with ``fit="letterbox"``); later fits read
  them from there. The images to suggest for are decoded as they are scored (the pool is large and
  changes as people submit: caching it at 256-512 px would cost more disk than it saves).

Worker-side code: torch and labeling.ml.detector are imported inside the functions, because the
web process imports this module (through labeling.tasks) to send work.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery

from annotator.models import UNSUBMITTED_STATUSES, Box, Image, ImageTag, LabelClass
from labeling.config import PROGRESS_EVERY_S, detector_rules
from labeling.data import fill_cache, submitted_ids
from labeling.models import ACTIVE_STATUSES, BoxSuggestion, ImageUncertainty, ProjectModelState, RunKind, RunStatus
from labeling.models import TrainingRun
from labeling.paths import checkpoint_path, detector_path
from labeling.ml.presets import detector_fit
from labeling.runs import LostClaim, RunMonitor, finish, pause_check, paused, run_claimed
from labeling.trust import box_trust

log = logging.getLogger(__name__)

HOLD_OUT_FROM = 10  # images with boxes before a fifth of them is held out for the thresholds
HOLD_OUT_FRACTION = 0.2
MIN_IMAGES = 2
SUGGEST_CHUNK = 64  # images decoded and scored at a time


def run_detector(run_id: int, node: str, send_later: Callable[[TrainingRun], object] | None = None) -> str:
    """``send_later``: how the run is queued again when it pauses for waiting runs
    (labeling.tasks.run_send_later; None: it never pauses)."""
    return run_claimed(run_id, node, lambda run, monitor: _detect(run, monitor, send_later))


def _detect(run: TrainingRun, monitor: RunMonitor, send_later: Callable[[TrainingRun], object] | None) -> str:
    import torch

    from labeling.ml.detector import DetectorConfig, DetectorRuntime, letterboxed_set, save_detector, train_detector

    device = "cuda" if torch.cuda.is_available() else "cpu"
    monitor.update(device=torch.cuda.get_device_name(0) if device == "cuda" else "cpu")
    plan = run.config.get("plan") or _plan(run)
    if isinstance(plan, str):
        finish(run, RunStatus.SUCCEEDED, metrics={"message": plan})
        return "succeeded"
    run.config = {**run.config, "plan": plan}
    backbone, small_stem, origin = _backbone(run.backbone_run_id)
    config = DetectorConfig(num_classes=len(plan["classes"]), small_stem=small_stem, **plan["detector"])
    epochs = -(-config.steps // max(1, -(-len(plan["train"]) // config.batch_size)))
    monitor.update(config=run.config, epochs=epochs, metrics={"backbone": origin})
    result = train_detector(
        config,
        letterboxed_set(*_examples(run.project_id, plan["train"], plan["classes"], config.size)),
        backbone=backbone,
        runtime=DetectorRuntime(
            device=device,
            checkpoint_path=detector_path(run.id),
            checkpoint_every=max(1, min(50, config.steps // 10)),
            on_progress=monitor.progress,
            should_stop=monitor.should_stop,
            should_yield=pause_check(run.id, send_later),
            progress_every_s=PROGRESS_EVERY_S,
        ),
    )
    if monitor.lost.is_set():
        raise LostClaim(run.id)
    if result.status == "cancelled":
        finish(run, RunStatus.CANCELLED)
        return "cancelled"
    if result.status == "yielded" and send_later is not None:
        return paused(run, f"step {result.steps_done}", send_later)
    save_detector(detector_path(run.id), result.model, config, step=result.steps_done, losses=result.losses)
    thresholds, metrics = _evaluate(run, plan, result.model, config, device)
    metrics.update(backbone=origin, final_loss=result.losses[-1] if result.losses else None)
    monitor.update(metrics=metrics)
    cutoffs = (thresholds, shown_cutoffs(metrics["trust"], len(plan["classes"])))
    if not _suggest(run, monitor, result.model, config, plan["classes"], cutoffs, device):
        finish(run, RunStatus.CANCELLED)
        return "cancelled"
    return _finalise(run, metrics)


# ---------------------------------------------------------------------------------------------
# What a run trains on


def _plan(run: TrainingRun) -> dict | str:
    """The training and held-out images and the classes, or why there is nothing to fit yet."""
    ids = submitted_ids(run.project_id)
    boxes = boxes_of(ids)
    classes = sorted({label for rows in boxes.values() for label, *_ in rows})
    if len({image_id for image_id, rows in boxes.items() if rows}) < MIN_IMAGES:
        return f"not enough boxes yet: boxes on at least {MIN_IMAGES} submitted images are needed"
    ambiguous = tagged_without_boxes(ids, classes, boxes)
    usable = np.array([i for i in ids.tolist() if i not in ambiguous], dtype=np.int64)
    boxed = int(sum(1 for i in usable.tolist() if boxes.get(i)))
    held = held_out(usable) if boxed >= HOLD_OUT_FROM else np.zeros(len(usable), bool)
    detector = detector_fit(run.config.get("detector", {}), run.config.get("rules") or detector_rules(), boxed)
    return {
        "train": usable[~held].tolist(),
        "held_out": usable[held].tolist(),
        "classes": classes,
        "boxed_images": boxed,
        "left_out_ambiguous": len(ambiguous),
        "detector": detector,
    }


def tagged_without_boxes(ids: np.ndarray, classes: list[int], boxes: dict[int, list]) -> set[int]:
    """The images that carry one of ``classes`` as a tag but no box of it: whether their objects were
    boxed is unknown, so they are neither truth nor negatives for boxes."""
    return {
        image_id
        for image_id, label_id in ImageTag.objects.filter(image_id__in=ids.tolist(), label_id__in=classes)
        .values_list("image_id", "label_id")
        .iterator(chunk_size=10_000)
        if label_id not in {label for label, *_ in boxes.get(image_id, [])}
    }


def held_out(ids: np.ndarray) -> np.ndarray:
    """(N,) bool: a stable fifth of the ids (a multiplicative hash), whatever else is in the project."""
    hashed = (np.asarray(ids, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return hashed < np.uint64(int(HOLD_OUT_FRACTION * 2**32))


def boxes_of(ids: np.ndarray) -> dict[int, list[tuple[int, float, float, float, float]]]:
    out: dict[int, list[tuple[int, float, float, float, float]]] = defaultdict(list)
    for start in range(0, len(ids), 5000):
        rows = Box.objects.filter(image_id__in=ids[start : start + 5000].tolist()).values_list(
            "image_id", "label_id", "x", "y", "w", "h"
        )
        for image_id, label_id, x, y, w, h in rows.iterator(chunk_size=10_000):
            out[image_id].append((label_id, x, y, w, h))
    return out


def _examples(
    project_id: int, ids: list[int], classes: list[int], size: int
) -> tuple[np.ndarray, list[tuple[int, int]], list[np.ndarray], list[np.ndarray]]:
    """(``ids`` letterboxed to ``size`` (N, S, S, 3), each one's (width, height), boxes x/y/w/h image
    pixels, class indices), in order; boxes of a label not in ``classes`` (made after the plan) are
    dropped. The pixels come from the project's detector cache at ``size`` (``fill_cache`` with
    ``fit="letterbox"``): each image is decoded once, not at every fit; one that cannot be decoded is
    left out (and logged)."""
    cache, held = fill_cache(project_id, size, np.asarray(ids, dtype=np.int64), fit="letterbox")
    column = {label: k for k, label in enumerate(classes)}
    boxes = boxes_of(held)
    rows = Image.objects.filter(pk__in=held.tolist()).values_list("id", "width", "height")
    dims = {image_id: (width, height) for image_id, width, height in rows}
    out_boxes, out_labels = [], []
    for image_id in held.tolist():
        rows = [r for r in boxes.get(image_id, []) if r[0] in column]
        out_boxes.append(np.array([r[1:] for r in rows], dtype=np.float32).reshape(-1, 4))
        out_labels.append(np.array([column[r[0]] for r in rows], dtype=np.int64))
    return cache.read(held), [dims[i] for i in held.tolist()], out_boxes, out_labels


def _decode(ids: list[int]) -> list[np.ndarray]:
    from PIL import Image as PILImage
    from PIL import ImageOps

    names = dict(Image.objects.filter(pk__in=ids).values_list("id", "file"))
    out = []
    for image_id in ids:
        with default_storage.open(names[image_id], "rb") as handle, PILImage.open(handle) as image:
            out.append(np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.uint8))
    return out


def _backbone(backbone_run_id: int | None):
    """(the Barlow Twins backbone, whether it has the small stem, "barlow_twins") or random weights."""
    from labeling.ml.backbone import load_backbone
    from labeling.ml.train import load_checkpoint

    path = checkpoint_path(backbone_run_id) if backbone_run_id is not None else None
    if path is None or not path.exists():
        return None, False, "random"
    config, checkpoint = load_checkpoint(path)
    return load_backbone(checkpoint["model"], config.model), config.model.uses_small_stem, "barlow_twins"


# ---------------------------------------------------------------------------------------------
# Thresholds, suggestions, the swap


def _evaluate(run: TrainingRun, plan: dict, model, config, device: str) -> tuple[np.ndarray, dict]:
    """Detections on the held-out images -> per-label AP50 (ours, which the thresholds' matching
    shares) and COCO's AP50 and mAP@[.5:.95] by pycocotools, and the confident thresholds."""
    from labeling.ml.coco_eval import coco_scores
    from labeling.ml.detector import predict_letterboxed

    pixels, sizes, boxes, labels = _examples(run.project_id, plan["held_out"], plan["classes"], config.size)
    found = predict_letterboxed(model, pixels, sizes, device=device) if sizes else []
    thresholds, judged = box_thresholds(
        project_id=run.project_id,
        classes=plan["classes"],
        found=found,
        truth_boxes=boxes,
        truth_labels=labels,
        labeled_ids=np.asarray(plan["train"] + plan["held_out"], dtype=np.int64),
    )
    coco = coco_scores(
        sizes,
        boxes,
        labels,
        [f.boxes for f in found],
        [f.scores for f in found],
        [f.labels for f in found],
        classes=len(plan["classes"]),
    )
    metrics = {
        "train_images": len(plan["train"]),
        "held_out_images": len(plan["held_out"]),
        "boxed_images": plan["boxed_images"],
        **judged,
        # What the dashboard shows: COCO's own evaluator on the same held-out detections (None
        # without pycocotools or without held-out images).
        "coco": coco.as_dict(list(judged["ap50"])) if coco is not None and sizes else None,
    }
    return thresholds, metrics


def box_thresholds(
    *,
    project_id: int,
    classes: list[int],
    found: list,
    truth_boxes: list[np.ndarray],
    truth_labels: list[np.ndarray],
    labeled_ids: np.ndarray,
) -> tuple[np.ndarray, dict]:
    """Any box model's detections (``labeling.ml.detector.Detections``, best score first, labels as
    indices into ``classes``) on images whose boxes are known -> per-label AP50 and the confident
    thresholds by the tag suggestions' rule. Our detector's held-out images and an external model's
    predictions on the submitted images both go through here, so both are trusted alike.
    -> ((L,) thresholds, +inf where not confident; {"ap50", "map50", "trust"})."""
    from labeling.ml.detector import average_precision, match_detections

    scores: list[list[np.ndarray]] = [[] for _ in classes]
    correct: list[list[np.ndarray]] = [[] for _ in classes]
    truths = [0] * len(classes)
    for f, b, lab in zip(found, truth_boxes, truth_labels):
        hit = match_detections(f, b, lab)
        for k in range(len(classes)):
            scores[k].append(f.scores[f.labels == k])
            correct[k].append(hit[f.labels == k])
            truths[k] += int((lab == k).sum())
    flat_scores = [np.concatenate(s) if s else np.zeros(0) for s in scores]
    flat_correct = [np.concatenate(c) if c else np.zeros(0, bool) for c in correct]
    ap50 = [average_precision(s, c, t) for s, c, t in zip(flat_scores, flat_correct, truths)]
    names = dict(LabelClass.objects.filter(project_id=project_id, id__in=classes).values_list("id", "name"))
    thresholds, trust = box_trust(
        project_id=project_id,
        label_ids=classes,
        names=[names.get(c, str(c)) for c in classes],
        scores=flat_scores,
        correct=flat_correct,
        truths=truths,
        ap50=ap50,
        labeled_ids=labeled_ids,
    )
    defined = [a for a in ap50 if a is not None]
    return thresholds, {
        "ap50": dict(zip([names.get(c, str(c)) for c in classes], ap50)),
        "map50": float(np.mean(defined)) if defined else None,
        "trust": trust,
    }


def shown_cutoffs(trust: dict, classes: int) -> np.ndarray:
    """(L,) per label the score from which its boxes are worth drawing (box_trust's "shown_from"),
    +inf where none is; a fit without held-out images judged nothing, and draws from the page's floor."""
    labels = trust.get("labels") or []
    if not labels:
        return np.zeros(classes)
    return np.array([np.inf if e.get("shown_from") is None else e["shown_from"] for e in labels], dtype=np.float64)


def _suggest(run: TrainingRun, monitor: RunMonitor, model, config, classes: list[int], cutoffs, device) -> bool:
    """Box suggestions for every image not submitted yet, a chunk at a time (idempotent: this run's
    rows are replaced). ``cutoffs``: the (L,) confident thresholds and shown_cutoffs. False when
    cancelled meanwhile."""
    from labeling.ml.detector import predict

    from labeling.ml.active import box_uncertainty

    thresholds, shown_from = cutoffs
    BoxSuggestion.objects.filter(run=run).delete()
    ImageUncertainty.objects.filter(run=run).delete()
    pool = list(
        Image.objects.filter(project_id=run.project_id, status__in=UNSUBMITTED_STATUSES)
        .order_by("id")
        .values_list("id", flat=True)
    )
    for start in range(0, len(pool), SUGGEST_CHUNK):
        if monitor.lost.is_set():
            raise LostClaim(run.id)
        if monitor.cancelled.is_set():
            return False
        ids = pool[start : start + SUGGEST_CHUNK]
        rows, doubts = [], []
        for image_id, f in zip(ids, predict(model, _decode(ids), config, device=device)):
            doubts.append(
                ImageUncertainty(run=run, image_id=image_id, score=box_uncertainty(f.scores, f.labels, thresholds))
            )
            rows += box_suggestion_rows(
                run=run, image_id=image_id, found=f, classes=classes, thresholds=thresholds, shown_from=shown_from
            )
        BoxSuggestion.objects.bulk_create(rows, batch_size=5000)
        ImageUncertainty.objects.bulk_create(doubts, batch_size=5000)
    return True


def box_suggestion_rows(
    *,
    run: TrainingRun,
    image_id: int,
    found,
    classes: list[int],
    thresholds: np.ndarray,
    shown_from: np.ndarray | None = None,
    size: tuple[int, int] | None = None,
) -> list[BoxSuggestion]:
    """One image's detections (``labeling.ml.detector.Detections``: x, y, w, h image pixels, labels as
    indices into ``classes``) -> its unsaved BoxSuggestion rows, our detector's and an external
    model's alike: clipped to the image when its (width, height) ``size`` is given (coordinates are
    stored inside it), boxes under a pixel wide or high dropped, scores clamped to [0, 1], confident
    (``predicted``) at or above their label's threshold, ``shown`` at or above its ``shown_from``
    (None: every one) unless it is a near-copy of a better shown box (``_hide_copies``)."""
    rows = []
    for (x, y, w, h), score, k in zip(found.boxes.tolist(), found.scores.tolist(), found.labels.tolist()):
        if size is not None:
            x0, y0 = max(0.0, x), max(0.0, y)
            w, h = min(float(size[0]), x + w) - x0, min(float(size[1]), y + h) - y0
            x, y = x0, y0
        if w >= 1 and h >= 1:
            rows.append(
                BoxSuggestion(
                    run=run,
                    image_id=image_id,
                    label_id=classes[k],
                    x=x,
                    y=y,
                    w=w,
                    h=h,
                    score=min(1.0, max(0.0, score)),
                    predicted=bool(score >= thresholds[k]),
                    shown=shown_from is None or bool(score >= shown_from[k]),
                )
            )
    _hide_copies(rows)
    return rows


# A box that covers a better drawn box this much (IoU) is that box again, under the same or another
# label (the detector suppresses copies per label only): one object, one box to judge.
COPY_IOU = 0.7


def _hide_copies(rows: list[BoxSuggestion]) -> None:
    """Among one image's rows, best score first: a shown unconfident row that overlaps an earlier
    shown or confident row by COPY_IOU or more is not shown."""
    kept: list[BoxSuggestion] = []
    for row in sorted(rows, key=lambda r: -r.score):
        if row.shown and not row.predicted and any(_iou(row, other) >= COPY_IOU for other in kept):
            row.shown = False
        if row.shown or row.predicted:
            kept.append(row)


def _iou(a: BoxSuggestion, b: BoxSuggestion) -> float:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(0.0, w) * max(0.0, h)
    return inter / (a.w * a.h + b.w * b.h - inter)


def _finalise(run: TrainingRun, metrics: dict) -> str:
    with transaction.atomic():
        if not finish(run, RunStatus.SUCCEEDED, metrics=metrics):
            raise LostClaim(run.id)
        box_suggestions_swap(run=run)
    return "succeeded"


def box_suggestions_swap(*, run: TrainingRun) -> None:
    """Make ``run``'s box suggestions the project's current ones (``detector_run``), a detector fit's
    or an external import's alike, raise the current probe's image doubts to the run's box doubts
    (a detector's; an external run writes none), and remove the replaced finished runs' rows
    (invisible from the swap on). A run still going keeps its rows: it swaps itself in when it finishes."""
    state, _ = ProjectModelState.objects.update_or_create(project_id=run.project_id, defaults={"detector_run": run})
    if state.probe_run_id is not None:
        merge_box_uncertainty(target_run_id=state.probe_run_id, detector_run_id=run.id)
    old = (
        TrainingRun.objects.filter(project_id=run.project_id, kind__in=(RunKind.DETECTOR, RunKind.EXTERNAL))
        .exclude(pk=run.pk)
        .exclude(status__in=ACTIVE_STATUSES)
    )
    BoxSuggestion.objects.filter(run__in=old).delete()
    ImageUncertainty.objects.filter(run__in=old).delete()


# ---------------------------------------------------------------------------------------------
# Box uncertainty in the "most uncertain first" order


def merge_box_uncertainty(*, target_run_id: int, detector_run_id: int) -> int:
    """The queue ranks by the current probe's ImageUncertainty rows (one indexed run, so a million
    images stay a keyset scan): a detector fit raises each of them to its image's box doubt where that
    is larger (the maximum, as over labels: one doubtful box or tag is enough). One UPDATE. A lower
    box doubt after a later detector fit shows at the next probe fit, which rewrites its rows and
    takes the maximum with the detector's then (``box_uncertainty_of``)."""
    box = ImageUncertainty.objects.filter(run_id=detector_run_id, image_id=OuterRef("image_id"))
    return (
        ImageUncertainty.objects.filter(run_id=target_run_id)
        .filter(Exists(box.filter(score__gt=OuterRef("score"))))
        .update(score=Subquery(box.values("score")[:1]))
    )


def box_uncertainty_of(*, project_id: int, ids: np.ndarray) -> np.ndarray:
    """(N,) the current detector's doubt about each image of ``ids`` (0 where it has none)."""
    run_id = ProjectModelState.objects.filter(project_id=project_id).values_list("detector_run_id", flat=True).first()
    out = np.zeros(len(ids), dtype=np.float64)
    if run_id is None or not len(ids):
        return out
    ids = np.asarray(ids, dtype=np.int64)
    found = dict(  # by the id range (one index scan, no list of a block's ids in the query)
        ImageUncertainty.objects.filter(
            run_id=run_id, image_id__gte=int(ids.min()), image_id__lte=int(ids.max())
        ).values_list("image_id", "score")
    )
    for k, image_id in enumerate(ids.tolist()):
        out[k] = found.get(image_id, 0.0)
    return out
