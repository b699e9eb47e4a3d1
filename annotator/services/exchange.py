"""Annotation exchange with other tools: exports (streamed, or as a background job for big ones)
and annotation-file imports. The formats themselves are pure functions in annotator/formats/;
this module reads the database into their records and writes what they parse through
``annotations_import`` (the one path for annotations from elsewhere)."""

from __future__ import annotations

import dataclasses
import io
import secrets
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction

from annotator import extensions
from annotator.extensions import PredictionRows
from annotator.formats import (
    BoxRecord,
    ExportMeta,
    FormatError,
    ImageRecord,
    LabelInfo,
    ParsedFile,
    Prediction,
    coco,
    csv_multilabel,
    labelstudio,
    name_candidates,
    native,
    stem,
    voc,
    yolo,
)
from annotator.models import Box, ExportJob, ExportStatus, Image, ImageStatus, ImageTag, Project, label_key
from annotator.services.annotations import BoxIn, ImageAnnotations, annotations_import
from annotator.services.labels import label_create


@dataclass(frozen=True)
class ExportFormat:
    name: str
    content_type: str
    extension: str
    predictions: bool  # whether the format carries the model's suggestions


EXPORT_FORMATS = {
    "coco": ExportFormat("coco", "application/json", "json", True),
    "voc": ExportFormat("voc", "application/zip", "zip", False),
    "yolo": ExportFormat("yolo", "application/zip", "zip", False),
    "csv": ExportFormat("csv", "text/csv", "csv", True),
    "json": ExportFormat("json", "application/json", "json", True),
}
IMPORT_FORMATS = ("coco", "yolo", "voc", "labelstudio", "json")


# ---------------------------------------------------------------------------------------------
# Export


ALL_IMAGES = "all"
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
        if self.format not in EXPORT_FORMATS:
            raise ValidationError(f"Unknown export format “{self.format}”; use one of {', '.join(EXPORT_FORMATS)}.")
        if self.status is not None and self.status not in EXPORT_STATUSES:
            raise ValidationError(f"Unknown status “{self.status}”; use one of {', '.join(EXPORT_STATUSES)}.")
        if self.images and self.format != "yolo":
            raise ValidationError("images=1 is for YOLO exports (the other formats name the files only).")
        if self.predictions_min is not None and not 0 <= self.predictions_min <= 1:
            raise ValidationError("The prediction threshold must be a probability from 0 to 1.")


def export_meta(*, project: Project) -> ExportMeta:
    labels = list(project.labels.values_list("id", "name", "color", "attributes"))
    used = set(Box.objects.filter(label__project=project).values_list("label_id", flat=True).distinct().order_by())
    return ExportMeta(project=project.name,
                      labels=tuple(LabelInfo(name, color, tuple(specs or ())) for _, name, color, specs in labels),
                      box_labels=tuple(name for label_id, name, _, _ in labels if label_id in used))


def export_records(*, project: Project, status: str | None = None, predictions_min: float | None = None,
                   batch: int = 5000) -> Iterator[ImageRecord]:
    """The project's images with their annotations, in id order, a batch of images (and one query
    each for their boxes, tags and predictions) at a time: memory stays flat at any project size."""
    names = dict(project.labels.values_list("id", "name"))
    prediction_rows = _prediction_rows(project, predictions_min) if predictions_min is not None else None
    images = Image.objects.filter(project=project).order_by("id")
    if status:
        images = images.filter(status=status)
    images = images.values_list("id", "original_name", "width", "height", "status", "sha256", "file")
    last = 0
    while rows := list(images.filter(id__gt=last)[:batch]):
        low, high = rows[0][0], rows[-1][0]
        last = high
        # Id ranges, not IN lists: one index range scan; rows of other images in the range are skipped.
        boxes, tags, predictions = defaultdict(list), defaultdict(list), defaultdict(list)
        for image_id, label_id, x, y, w, h, attributes in (
                Box.objects.filter(image_id__gte=low, image_id__lte=high).order_by("id")
                .values_list("image_id", "label_id", "x", "y", "w", "h", "attributes")):
            boxes[image_id].append(BoxRecord(names.get(label_id, ""), x, y, w, h, attributes or None))
        for image_id, label_id in (ImageTag.objects.filter(image_id__gte=low, image_id__lte=high)
                                   .order_by("id").values_list("image_id", "label_id")):
            tags[image_id].append(names.get(label_id, ""))
        if prediction_rows is not None:
            for image_id, label_id, p in prediction_rows(low, high):
                predictions[image_id].append(Prediction(names[label_id], p))
        for image_id, name, width, height, image_status, sha256, stored in rows:
            yield ImageRecord(image_id, name, width, height, image_status, tuple(boxes.get(image_id, ())),
                              tuple(tags.get(image_id, ())), tuple(predictions.get(image_id, ())), sha256, stored)


def export_stream(*, project: Project, options: ExportOptions) -> Iterator[bytes]:
    options.check()
    meta = export_meta(project=project)
    records = export_records(project=project, status=options.status_filter, predictions_min=options.predictions_min)
    with_predictions = options.predictions_min is not None
    if options.format == "coco":
        return coco.write(meta, records, predictions=with_predictions)
    if options.format == "csv":
        return csv_multilabel.write(meta, records, predictions=with_predictions)
    if options.format == "json":
        return native.write(meta, records, predictions=with_predictions)
    if options.format == "yolo":
        return yolo.write(meta, records, _stored_bytes if options.images else None)
    return voc.write(meta, records)


def _stored_bytes(record: ImageRecord) -> bytes:
    from django.core.files.storage import default_storage

    with default_storage.open(record.stored, "rb") as handle:
        return handle.read()


def export_file_name(*, project: Project, options: ExportOptions) -> str:
    fmt = EXPORT_FORMATS[options.format]
    return f"project-{project.id}-{fmt.name}.{fmt.extension}"


def _prediction_rows(project: Project, min_probability: float) -> PredictionRows | None:
    """The model's predictions, from what model assistance registered (extensions.PREDICTION_SOURCES);
    None without a model."""
    for source in extensions.PREDICTION_SOURCES:
        return source(project_id=project.id, min_probability=min_probability)
    return None


# ---------------------------------------------------------------------------------------------
# Import


@dataclass
class AnnotationImportReport:
    images: int = 0
    boxes: int = 0
    tags: int = 0
    labels_created: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # file names with no image of that name here
    skipped_results: int = 0
    not_submitted: int = 0  # images the file marks unlabeled, in progress or skipped: not annotations

    def as_dict(self) -> dict:
        return {"images": self.images, "boxes": self.boxes, "tags": self.tags, "labels_created": self.labels_created,
                "unmatched": self.unmatched, "skipped_results": self.skipped_results,
                "not_submitted": self.not_submitted}


class ImageMatcher:
    """Finds the project's image an entry of an annotation file means: by the sha256 of its file when
    the entry carries one (Twinlabel's COCO and JSON exports), else by its file name. A name (or a
    YOLO stem) that several images share cannot say which one it means: it is remembered as
    ambiguous, and the import refuses it instead of guessing."""

    def __init__(self, project: Project):
        self.by_name: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        self.by_stem: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
        self.by_sha: dict[str, tuple[int, int, int]] = {}
        self.ambiguous: set[str] = set()
        for image_id, name, width, height, sha in (Image.objects.filter(project=project).order_by("id")
                                                   .values_list("id", "original_name", "width", "height", "sha256")
                                                   .iterator(chunk_size=5000)):
            self.by_name[name].append((image_id, width, height))
            self.by_stem[stem(name)].append((name, width, height))
            self.by_sha[sha] = (image_id, width, height)

    def find(self, file_name: str, sha256: str = "") -> tuple[int, int, int] | None:
        if sha256 and sha256 in self.by_sha:
            return self.by_sha[sha256]
        for name in name_candidates(file_name):
            found = self.by_name.get(name)
            if found and len(found) > 1:
                self.ambiguous.add(name)
                return None
            if found:
                return found[0]
        return None

    def find_stem(self, file_stem: str) -> tuple[str, int, int] | None:
        found = self.by_stem.get(file_stem)
        if found and len(found) > 1:
            self.ambiguous.add(f"{file_stem}.*")
            return None
        return found[0] if found else None

    def refuse_ambiguous(self) -> None:
        if self.ambiguous:
            names = sorted(self.ambiguous)
            raise ValidationError(
                f"{len(names)} file name(s) belong to more than one image of this project, so the file cannot say "
                f"which image it means: {', '.join(names[:20])}{' …' if len(names) > 20 else ''}. Import a "
                "Twinlabel COCO or JSON export (they carry each image's sha256), or give the images distinct names.")


def annotations_file_import(*, project: Project, user: AbstractBaseUser | None, fmt: str,
                            files: list[tuple[str, bytes]]) -> AnnotationImportReport:
    """Read annotation files of another tool and store them on the project's images, matched by
    file name. All or nothing: a file that does not parse, or a box that does not fit its image,
    changes nothing (ValidationError). Labels the files use that the project lacks are created."""
    if fmt not in IMPORT_FORMATS:
        raise ValidationError(f"Unknown import format “{fmt}”; use one of {', '.join(IMPORT_FORMATS)}.")
    if not files:
        raise ValidationError("Choose the annotation file(s) to import.")
    matcher = ImageMatcher(project)
    try:
        parsed = _parse(fmt, _unzipped(files), matcher)
    except FormatError as error:
        raise ValidationError(str(error)) from None
    except RecursionError:  # the JSON or YAML parser, on lists or objects nested thousands deep
        raise ValidationError("The file nests lists or objects too deeply to be an annotation file.") from None
    report = AnnotationImportReport(skipped_results=getattr(parsed, "skipped_results", 0))
    matched, seen = [], {}
    for item in parsed.images:
        if item.status and item.status != ImageStatus.SUBMITTED:
            report.not_submitted += 1  # exported with status=all: no labels, not a negative
            continue
        ambiguous = len(matcher.ambiguous)
        found = matcher.find(item.file_name, item.sha256)
        if found is None:
            if len(matcher.ambiguous) == ambiguous:  # (an ambiguous name is refused below, not unmatched)
                # Label Studio names uploads "<8 hex>-name.png": report the name the person uploaded.
                report.unmatched.append(name_candidates(item.file_name)[-1] if fmt == "labelstudio"
                                        else item.file_name)
        elif found[0] in seen:
            raise ValidationError(f"“{seen[found[0]]}” and “{item.file_name}” in the file are the same image here; "
                                  "an image can have one set of annotations.")
        else:
            seen[found[0]] = item.file_name
            matched.append((found[0], item))
    matcher.refuse_ambiguous()
    with transaction.atomic():
        label_ids = _labels_for(project, parsed, [item for _, item in matched], report)
        items = [ImageAnnotations(image_id, tuple(BoxIn(label_ids[label_key(b.label.strip())], b.x, b.y, b.w, b.h,
                                                        attributes=b.attributes or {})
                                                  for b in item.boxes),
                                  tuple(label_ids[label_key(t.strip())] for t in item.tags)) for image_id, item in matched]
        annotations_import(project=project, items=items, user=user)
    report.images = len(items)
    report.boxes = sum(len(i.boxes) for i in items)
    report.tags = sum(len(set(i.tag_label_ids)) for i in items)
    return report


def _parse(fmt: str, files: list[tuple[str, bytes]], matcher: ImageMatcher) -> ParsedFile:
    if fmt == "yolo":
        names_files = [(n, d) for n, d in files if n.rsplit("/", 1)[-1] in ("data.yaml", "data.yml", "classes.txt",
                                                                             "obj.names")]
        if not names_files:
            raise FormatError("A YOLO import needs the class names: add data.yaml or classes.txt.")
        names = yolo.read_names(*names_files[0])
        labels = {n: d for n, d in files if n.endswith(".txt") and (n, d) not in names_files}
        return yolo.read(labels, names, matcher.find_stem)
    if fmt == "voc":
        return voc.read(files)
    if len(files) != 1:
        raise FormatError(f"A {fmt} import is one file.")
    data = files[0][1]
    if fmt == "coco":
        return coco.read(data)
    if fmt == "json":
        return native.read(data)

    def size_of(names: list[str]):
        found = next((f for n in names if (f := matcher.find(n))), None)
        return found[1:] if found else None

    return labelstudio.read(data, size_of)


def _unzipped(files: list[tuple[str, bytes]], limit: int = 200 * 1024 * 1024) -> list[tuple[str, bytes]]:
    out = []
    for name, data in files:
        if not name.lower().endswith(".zip"):
            out.append((name, data))
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if sum(m.file_size for m in members) > limit:
                    raise FormatError(f"{name} unpacks to more than {limit // (1 << 20)} MB.")
                out += [(m.filename, archive.read(m)) for m in members]
        except zipfile.BadZipFile:
            raise FormatError(f"{name} is not a zip archive.") from None
    return out


def _labels_for(project: Project, parsed: ParsedFile, items, report: AnnotationImportReport) -> dict[str, int]:
    """Label ids by lower-case name, creating the labels the import needs (case-insensitive match)."""
    existing = dict(project.labels.values_list("name_key", "id"))
    wanted = list(parsed.labels)
    for item in items:
        wanted += [b.label for b in item.boxes] + list(item.tags)
    for name in dict.fromkeys(n.strip() for n in wanted):
        if name and label_key(name) not in existing:
            existing[label_key(name)] = label_create(project=project, name=name,
                                                     attributes=parsed.label_attributes.get(name)).id
            report.labels_created.append(name)
    missing = [n for n in wanted if not n.strip()]
    if missing:
        raise ValidationError("A box or tag in the file has an empty label name.")
    return existing


# ---------------------------------------------------------------------------------------------
# Export jobs: big exports written by a worker


class ExportInProgress(Exception):
    """The project already has a background export queued or running (``job``)."""

    def __init__(self, job: ExportJob):
        super().__init__(job.id)
        self.job = job


def export_job_start(*, project: Project, user: AbstractBaseUser | None, options: ExportOptions) -> ExportJob:
    """Queue a background export; one per project at a time (ExportInProgress). Expired export
    files of every project are removed on the way (export_jobs_expire)."""
    from annotator.tasks import enqueue, export_run

    options.check()
    export_jobs_expire()
    with transaction.atomic():
        # The project row's lock makes "none active, then create" one step for concurrent requests.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        active = ExportJob.objects.filter(project=project, status__in=(ExportStatus.QUEUED, ExportStatus.RUNNING))
        if (busy := active.first()) is not None:
            raise ExportInProgress(busy)
        job = ExportJob.objects.create(project=project, created_by=user, options=dataclasses.asdict(options))
        enqueue(export_run, job.id, row=job)
    if not transaction.get_connection().in_atomic_block:
        job.refresh_from_db()  # sent by now: the answer shows a broker outage's message
    return job


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

    from annotator.models import ExportStatus

    if not ExportJob.objects.filter(pk=job_id, status=ExportStatus.QUEUED).update(status=ExportStatus.RUNNING, error=""):
        return
    job = ExportJob.objects.select_related("project").get(pk=job_id)
    options = ExportOptions(**job.options)
    try:
        with tempfile.TemporaryFile() as out:
            for chunk in export_stream(project=job.project, options=options):
                out.write(chunk)
            size = out.tell()
            out.seek(0)
            name = default_storage.save(f"exports/{job.project_id}/{job.id}-{secrets.token_hex(8)}-"
                                        f"{export_file_name(project=job.project, options=options)}", File(out))
    except Exception as error:  # the job must end either way; the worker log has the traceback
        ExportJob.objects.filter(pk=job_id).update(status=ExportStatus.FAILED, error=str(error)[:2000],
                                                   finished_at=timezone.now())
        raise
    ExportJob.objects.filter(pk=job_id).update(status=ExportStatus.SUCCEEDED, file=name, size_bytes=size,
                                               finished_at=timezone.now())
