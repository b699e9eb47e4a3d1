"""Annotation exchange with other tools, the writes: annotation-file imports (parsed by a registered
reader, matched to images by sha256 or an unambiguous file name, written through
``annotations_import``, the one path for annotations from elsewhere, all or nothing) and queueing a
background export job. Reading a project into an export is annotator/exports.py."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotator.exports import ExportOptions, export_jobs_expire
from annotator.formats import FormatError, ParsedFile, name_candidates, registry, stem
from annotator.models import ExportJob, ExportStatus, Image, ImageStatus, Project, label_key
from annotator.services.annotations import BoxIn, ImageAnnotations, annotations_import
from annotator.tasks import enqueue, export_run
from annotator.services.labels import label_create


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
        return {
            "images": self.images,
            "boxes": self.boxes,
            "tags": self.tags,
            "labels_created": self.labels_created,
            "unmatched": self.unmatched,
            "skipped_results": self.skipped_results,
            "not_submitted": self.not_submitted,
        }


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
        for image_id, name, width, height, sha in (
            Image.objects.filter(project=project)
            .order_by("id")
            .values_list("id", "original_name", "width", "height", "sha256")
            .iterator(chunk_size=5000)
        ):
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
                "Twinlabel COCO or JSON export (they carry each image's sha256), or give the images distinct names."
            )


def annotations_file_import(
    *, project: Project, user: AbstractBaseUser | None, fmt: str, files: list[tuple[str, bytes]]
) -> AnnotationImportReport:
    """Read annotation files of another tool and store them on the project's images, matched by
    file name. All or nothing: a file that does not parse, or a box that does not fit its image,
    changes nothing (ValidationError). Labels the files use that the project lacks are created."""
    try:
        read = registry.get_reader(fmt).read
    except FormatError as error:
        raise ValidationError(str(error)) from None
    if not files:
        raise ValidationError("Choose the annotation file(s) to import.")
    matcher = ImageMatcher(project)
    try:
        parsed = read(_unzipped(files), matcher)
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
                report.unmatched.append(name_candidates(item.file_name)[-1] if fmt == "labelstudio" else item.file_name)
        elif found[0] in seen:
            raise ValidationError(
                f"“{seen[found[0]]}” and “{item.file_name}” in the file are the same image here; "
                "an image can have one set of annotations."
            )
        else:
            seen[found[0]] = item.file_name
            matched.append((found[0], item))
    matcher.refuse_ambiguous()
    with transaction.atomic():
        label_ids = _labels_for(project, parsed, [item for _, item in matched], report)
        items = [
            ImageAnnotations(
                image_id,
                tuple(
                    BoxIn(label_ids[label_key(b.label.strip())], b.x, b.y, b.w, b.h, attributes=b.attributes or {})
                    for b in item.boxes
                ),
                tuple(label_ids[label_key(t.strip())] for t in item.tags),
            )
            for image_id, item in matched
        ]
        annotations_import(project=project, items=items, user=user)
    report.images = len(items)
    report.boxes = sum(len(i.boxes) for i in items)
    report.tags = sum(len(set(i.tag_label_ids)) for i in items)
    return report


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
            existing[label_key(name)] = label_create(
                project=project, name=name, attributes=parsed.label_attributes.get(name)
            ).id
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
