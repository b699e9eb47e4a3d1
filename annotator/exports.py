"""Exports: a project's images and annotations read in batches into the formats' records and
streamed through a registered writer (annotator/formats/registry.py), for the API's streamed
answer, ``manage.py export`` and the background export job, whose worker step (``export_job_run``)
and expiry are here too. Reads and the job's own row only: the job is queued by
``annotator.services.exchange.export_job_start`` (through annotator.tasks), never from here."""

from __future__ import annotations

import json
import secrets
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db.models import Exists, OuterRef, TextField
from django.db.models.functions import Cast

from annotator import extensions
from annotator.disk import disk_full
from annotator.extensions import BoxPredictionRows, PredictionRows
from annotator.formats import BoxPrediction, BoxRecord, ExportMeta, FormatError, ImageRecord, LabelInfo, Prediction
from annotator.formats import registry
from annotator.models import Box, ExportJob, ExportStatus, Image, ImageStatus, ImageTag, Project


ALL_IMAGES = "all"
_NO_ATTRIBUTES = (None, "{}", "")
EXPORT_STATUSES = (*ImageStatus.values, ALL_IMAGES)


@dataclass(frozen=True)
class ExportOptions:
    format: str
    # Only images with this status. Submitted by default: an unlabeled image in a COCO or YOLO file
    # reads as "no objects here" to a training pipeline. "all" (or None, as older jobs stored it):
    # every image, its status written where the format has room for it (COCO, JSON).
    status: str | None = ImageStatus.SUBMITTED
    predictions_min: float | None = None  # include suggestions with probability ≥ this, as predictions
    images: bool = False  # YOLO: the image files too, so that the zip trains as it is

    @property
    def status_filter(self) -> str | None:
        return None if self.status in (None, ALL_IMAGES) else self.status

    def check(self) -> None:
        writer = _writer(self.format)
        if self.status is not None and self.status not in EXPORT_STATUSES:
            raise ValidationError(f"Unknown status “{self.status}”; use one of {', '.join(EXPORT_STATUSES)}.")
        if self.images and not writer.images:
            raise ValidationError("images=1 is for YOLO exports (the other formats name the files only).")
        if self.predictions_min is not None and not 0 <= self.predictions_min <= 1:
            raise ValidationError("The prediction threshold must be a probability from 0 to 1.")
        if writer.name == "coco_results" and self.predictions_min is None:
            raise ValidationError("coco_results holds predictions only: add predictions=<min score> (e.g. 0.5).")


def export_meta(*, project: Project) -> ExportMeta:
    labels = list(project.labels.values_list("id", "name", "color", "attributes"))
    # The labels with boxes: one index probe per label (EXISTS), where a DISTINCT over the box table
    # read every box of the project.
    used = set(project.labels.filter(Exists(Box.objects.filter(label=OuterRef("pk")))).values_list("id", flat=True))
    return ExportMeta(
        project=project.name,
        labels=tuple(LabelInfo(name, color, tuple(specs or ())) for _, name, color, specs in labels),
        box_labels=tuple(name for label_id, name, _, _ in labels if label_id in used),
    )


def export_records(
    *, project: Project, status: str | None = None, predictions_min: float | None = None, batch: int = 5000
) -> Iterator[ImageRecord]:
    """The project's images with their annotations, in id order, a batch of images (and one query
    each for their boxes, tags and predictions) at a time: memory stays flat at any project size."""
    names = dict(project.labels.values_list("id", "name"))
    prediction_rows = _prediction_rows(project, predictions_min) if predictions_min is not None else None
    box_rows = _box_prediction_rows(project, predictions_min) if predictions_min is not None else None
    images = Image.objects.filter(project=project).order_by("id")
    if status:
        images = images.filter(status=status)
    images = images.values_list("id", "original_name", "width", "height", "status", "sha256", "file")
    last = 0
    while rows := list(images.filter(id__gt=last)[:batch]):
        low, high = rows[0][0], rows[-1][0]
        last = high
        # Id ranges, not IN lists: one index range scan; rows of other images in the range are skipped.
        boxes, tags, predictions, box_predictions = (
            defaultdict(list),
            defaultdict(list),
            defaultdict(list),
            defaultdict(list),
        )
        # Attributes as text, decoded only when a box has any: most have none, and a JSON decode per
        # box was a third of a COCO export's time (bench/export.py).
        for image_id, label_id, x, y, w, h, attributes in (
            Box.objects.filter(image_id__gte=low, image_id__lte=high)
            .order_by("id")
            .values_list("image_id", "label_id", "x", "y", "w", "h", Cast("attributes", TextField()))
        ):
            attributes = json.loads(attributes) if attributes not in _NO_ATTRIBUTES else None
            boxes[image_id].append(BoxRecord(names.get(label_id, ""), x, y, w, h, attributes or None))
        for image_id, label_id in (
            ImageTag.objects.filter(image_id__gte=low, image_id__lte=high)
            .order_by("id")
            .values_list("image_id", "label_id")
        ):
            tags[image_id].append(names.get(label_id, ""))
        if prediction_rows is not None:
            for image_id, label_id, p in prediction_rows(low, high):
                predictions[image_id].append(Prediction(names[label_id], p))
        if box_rows is not None:
            for image_id, label_id, x, y, w, h, score in box_rows(low, high):
                box_predictions[image_id].append(BoxPrediction(names[label_id], x, y, w, h, score))
        for image_id, name, width, height, image_status, sha256, stored in rows:
            yield ImageRecord(
                image_id,
                name,
                width,
                height,
                image_status,
                tuple(boxes.get(image_id, ())),
                tuple(tags.get(image_id, ())),
                tuple(predictions.get(image_id, ())),
                sha256,
                stored,
                tuple(box_predictions.get(image_id, ())),
            )


def export_stream(*, project: Project, options: ExportOptions) -> Iterator[bytes]:
    options.check()
    meta = export_meta(project=project)
    records = export_records(project=project, status=options.status_filter, predictions_min=options.predictions_min)
    write_options = registry.WriteOptions(
        predictions=options.predictions_min is not None, image_file=_stored_bytes if options.images else None
    )
    return registry.get_writer(options.format).write(meta, records, write_options)


def _stored_bytes(record: ImageRecord) -> bytes:
    from django.core.files.storage import default_storage

    with default_storage.open(record.stored, "rb") as handle:
        return handle.read()


def export_file_name(*, project: Project, options: ExportOptions) -> str:
    return registry.get_writer(options.format).file_name(f"project-{project.id}")


def _writer(name: str) -> registry.Writer:
    try:
        return registry.get_writer(name)
    except FormatError as error:
        raise ValidationError(str(error)) from None


def _box_prediction_rows(project: Project, min_score: float) -> BoxPredictionRows | None:
    """The detector's suggested boxes, from what model assistance registered; None without one."""
    for source in extensions.BOX_PREDICTION_SOURCES:
        rows = source(project_id=project.id, min_score=min_score)
        if rows is not None:
            return rows
    return None


def _prediction_rows(project: Project, min_probability: float) -> PredictionRows | None:
    """The model's predictions, from what model assistance registered (extensions.PREDICTION_SOURCES);
    None without a model."""
    for source in extensions.PREDICTION_SOURCES:
        return source(project_id=project.id, min_probability=min_probability)
    return None


def export_jobs_expire(*, now=None) -> int:
    """Delete finished export jobs older than EXPORT_KEEP_HOURS with their files; returns how many.
    Run by export_job_start, ``manage.py expire_exports`` and the ``exports_expire`` task."""
    from datetime import timedelta

    from django.conf import settings
    from django.core.files.storage import default_storage
    from django.utils import timezone

    cutoff = (now or timezone.now()) - timedelta(hours=settings.EXPORT_KEEP_HOURS)
    old = ExportJob.objects.filter(status__in=(ExportStatus.SUCCEEDED, ExportStatus.FAILED), finished_at__lt=cutoff)
    removed = 0
    for job_id, name in old.values_list("id", "file")[:1000]:
        if name:
            default_storage.delete(name)  # the file first: a row left behind is harmless, a file is not seen
        removed += ExportJob.objects.filter(pk=job_id).delete()[0]
    return removed


def export_job_run(*, job_id: int) -> None:
    """Claim the queued job (a second delivery finds it taken and returns), stream the export into
    storage, and record the outcome."""
    from django.core.files.storage import default_storage
    from django.utils import timezone

    from annotator.jobs import job_claim, JobHeartbeat

    if not job_claim(ExportJob, job_id):
        return
    job = ExportJob.objects.select_related("project").get(pk=job_id)
    options = ExportOptions(**job.options)
    beat = JobHeartbeat(ExportJob, job_id)
    try:
        with tempfile.TemporaryFile() as out:
            for chunk in export_stream(project=job.project, options=options):
                out.write(chunk)
                beat()
            size = out.tell()
            out.seek(0)
            name = default_storage.save(
                f"exports/{job.project_id}/{job.id}-{secrets.token_hex(8)}-"
                f"{export_file_name(project=job.project, options=options)}",
                File(out),
            )
    except Exception as error:  # the job must end either way; the worker log has the traceback
        message = str(error)[:2000]
        if disk_full(error):
            message = (  # what is left of the file goes with the media sweep (annotator/services/media_gc.py)
                "The server's disk is full: the export could not be written. Free some space "
                "(or ask the administrator to), then export again."
            )
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportStatus.FAILED, error=message, finished_at=timezone.now()
        )
        raise
    ExportJob.objects.filter(pk=job_id).update(
        status=ExportStatus.SUCCEEDED, file=name, size_bytes=size, finished_at=timezone.now()
    )
    extensions.event_emit(
        project_id=job.project_id,
        event="export.ready",
        data={"job_id": job.id, "format": options.format, "size_bytes": size},
    )
