"""The annotation domain. Constraints live in the database, not only in Python, so that no
code path (a bulk import, a race, a manual SQL fix) can store what the product forbids."""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

# \A and \Z, not ^ and $: "$" also matches before a trailing newline, so "#00ff00\n" passed.
HEX_COLOUR = RegexValidator(r"\A#[0-9a-fA-F]{6}\Z", "Use a colour like #1f77b4.")


def label_key(name: str) -> str:
    """The one comparison key of label names, in Python and (stored in ``LabelClass.name_key``,
    unique per project) in the database: NFKC then case folding. Python's and PostgreSQL's lower()
    differ ("İ"), so the database compares what Python computed, not its own lower()."""
    return unicodedata.normalize("NFKC", name).casefold()


def one_of(field: str, choices: type[models.TextChoices], name: str) -> models.CheckConstraint:
    """A CHECK that ``field`` holds one of ``choices``: the database refuses any other value, whatever
    code writes it."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # This fraction of the images is labeled independently by two annotators, to measure agreement.
    overlap_fraction = models.FloatField(default=0.0)
    # The queue serves one image of each near-duplicate group (Image.duplicate_of) unless turned off.
    queue_one_per_duplicate_group = models.BooleanField(default=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="project_name_not_empty"),
            models.CheckConstraint(
                condition=Q(overlap_fraction__gte=0) & Q(overlap_fraction__lte=1), name="project_overlap_fraction_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class LabelClass(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    # label_key(name), set on every save: "Dog", "dog" and "DOG" are the same label to people.
    name_key = models.CharField(max_length=300, editable=False)
    color = models.CharField(max_length=7, default="#1f77b4", validators=[HEX_COLOUR])
    hotkey = models.CharField(max_length=1, blank=True)
    order = models.PositiveIntegerField(default=0)
    # The box attributes this label defines beyond occluded / truncated / difficult (annotator/attributes.py).
    attributes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name_key"], name="label_name_key_unique_per_project"),
            models.UniqueConstraint(
                fields=["project", "hotkey"], condition=~Q(hotkey=""), name="label_hotkey_unique_per_project"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="label_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # Derived here rather than in the services so that no path (the Django admin included)
        # can store a name whose key is stale.
        self.name_key = label_key(self.name)
        if kwargs.get("update_fields") is not None and "name" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "name_key"}
        super().save(*args, **kwargs)


class ImageStatus(models.TextChoices):
    UNLABELED = "unlabeled", "Unlabeled"
    IN_PROGRESS = "in_progress", "In progress"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"


# Status groups, each defined once (a TextChoices class cannot hold them: every attribute becomes a
# member). Waiting to be labeled: the queue hands these out, the dashboard counts them "unlabeled".
OPEN_STATUSES = (ImageStatus.UNLABELED, ImageStatus.IN_PROGRESS)
# Without labels to learn from (open or skipped): the model scores these and suggests labels for them.
UNSUBMITTED_STATUSES = (*OPEN_STATUSES, ImageStatus.SKIPPED)


class ReviewStatus(models.TextChoices):
    NONE = "none", "Not reviewed"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class Image(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(max_length=500)
    thumbnail = models.FileField(max_length=500)
    original_name = models.CharField(max_length=255, help_text="File name as uploaded; imports match on it.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=ImageStatus.choices, default=ImageStatus.UNLABELED)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1, help_text="Bumped on every annotation write (optimistic locking).")
    # The queue's soft lock: whoever was handed the image holds it until this time.
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    locked_until = models.DateTimeField(null=True, blank=True)
    # The latest review of the latest submission; the history is in Review. A rejected image is back
    # in the annotation queue with the reviewer's comment.
    review_status = models.CharField(max_length=8, choices=ReviewStatus.choices, default=ReviewStatus.NONE)
    # An image in the overlap sample waits for its second, independent annotator; not this one.
    overlap_first_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Time spent on an image (the dashboard's "seconds per image"): the queue stamps when it hands
    # the image out, and a submit by the person who holds it stores the seconds since then.
    opened_at = models.DateTimeField(null=True, blank=True)
    work_seconds = models.FloatField(null=True, blank=True)
    # The image's boxes and the tags people made, counted by every write of its annotations: the
    # dashboard sums them per annotator and day without reading the box and tag tables.
    box_count = models.PositiveIntegerField(default=0)
    human_tag_count = models.PositiveIntegerField(default=0)
    # In a near-duplicate group and not the one the queue serves: that image's id (the group's
    # smallest). Written by model assistance through images_duplicate_groups_set; None otherwise.
    duplicate_of = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_sha256_unique_per_project"),
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="image_size_positive"),
            one_of("status", ImageStatus, "image_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=ImageStatus.SUBMITTED) | Q(submitted_at__isnull=False),
                name="image_submitted_has_time",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="image_version_positive"),
            one_of("review_status", ReviewStatus, "image_review_status_valid"),
        ]
        indexes = [
            # The queue and the status-filtered grid: WHERE project=? AND status=? ORDER BY id.
            models.Index(fields=["project", "status", "id"], name="image_project_status_id"),
            # The unfiltered grid's keyset pagination: WHERE project=? AND id>? ORDER BY id.
            models.Index(fields=["project", "id"], name="image_project_id"),
            # The queue's second source: in-progress images whose soft lock has expired.
            models.Index(fields=["project", "status", "locked_until"], name="image_project_status_lock"),
            # The review queue: submitted images not yet reviewed, oldest submission first.
            models.Index(fields=["project", "status", "review_status", "submitted_at"], name="image_review_queue"),
            # Annotation imports match images by file name.
            models.Index(fields=["project", "original_name"], name="image_project_name"),
            # The dashboard: submissions per annotator and day, and the median time per image, read
            # from the index alone.
            models.Index(
                fields=["project", "status", "submitted_by", "submitted_at", "box_count", "human_tag_count"],
                name="image_project_submissions",
            ),
            models.Index(
                fields=["project", "submitted_by", "work_seconds"],
                name="image_project_work_time",
                condition=Q(work_seconds__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.original_name


class ProjectStatusCount(models.Model):
    """How many of a project's images are in each status, kept by the services in the same
    transaction as every status change, so the project page reads a handful of rows instead of
    counting a million (``manage.py recount_statuses`` rebuilds them from the images)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="status_counts")
    status = models.CharField(max_length=16, choices=ImageStatus.choices)
    # Several rows per status, summed on read (see services.status_counts_change): one row per
    # status was a lock hot spot under 20 concurrent annotators (bench/load.py).
    shard = models.PositiveSmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "status", "shard"], name="status_count_unique_shard"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.status}: {self.count}"


class LabelBoxCount(models.Model):
    """How many boxes each label has, moved by every write of boxes in the same transaction, so the
    dashboard reads a few rows per label instead of grouping the whole box table
    (``manage.py recount_statuses`` rebuilds them). Sharded like ProjectStatusCount: every PUT of
    annotations moves the counters of the labels it touches, and 20 annotators drawing "person" would
    otherwise all wait on one row."""

    label = models.ForeignKey("LabelClass", on_delete=models.CASCADE, related_name="box_counts")
    shard = models.PositiveSmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["label", "shard"], name="label_box_count_unique_shard"),
        ]

    def __str__(self) -> str:
        return f"label {self.label_id}: {self.count} boxes"


class Source(models.TextChoices):
    HUMAN = "human", "Human"
    MODEL = "model", "Model (accepted suggestion)"
    MODEL_AUTO = "model_auto", "Model (auto-accepted)"
    MODEL_ADJUSTED = "model_adjusted", "Model (accepted suggestion, geometry changed)"
    # A person's tag set on many images at once (a lasso on the embedding map).
    HUMAN_BULK = "human_bulk", "Human, in bulk"


class Authored(models.Model):
    """Who made an annotation, and whether a person drew it or accepted it from the model."""

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.HUMAN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class Box(Authored):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="boxes")
    # PROTECT: deleting a label must never silently delete people's work.
    label = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="boxes")
    x = models.FloatField()  # image pixels, origin top-left
    y = models.FloatField()
    w = models.FloatField()
    h = models.FloatField()
    # Only what is set: {"occluded": true, "colour": "red"}; {} for a plain box (annotator/attributes.py).
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(w__gt=0) & Q(h__gt=0), name="box_size_positive"),
            models.CheckConstraint(condition=Q(x__gte=0) & Q(y__gte=0), name="box_inside_image_origin"),
            one_of("source", Source, "box_source_valid"),
        ]
        indexes = [
            # "Images with a box of label L" (the image list's ?label= filter) probes (image, label):
            # with only the two single-column indexes an unanalysed SQLite walked every box of L.
            models.Index(fields=["image", "label"], name="box_image_label"),
            # The dashboard's attribute counts read only the boxes that carry an attribute: without this
            # partial index they scanned every box of the database (18 ms at 150k boxes, linear beyond).
            models.Index(fields=["label"], condition=~Q(attributes={}), name="box_label_with_attributes"),
        ]

    def __str__(self) -> str:
        return f"{self.label_id} @ ({self.x:.0f},{self.y:.0f},{self.w:.0f},{self.h:.0f})"


class ImageTag(Authored):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="tags")
    label = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="tags")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "label"], name="tag_unique_per_image"),
            one_of("source", Source, "tag_source_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.image_id}:{self.label_id}"


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "project"], name="membership_unique"),
            one_of("role", Role, "membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} of {self.project_id}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ExportJob(models.Model):
    """A big export written by a Celery worker to storage, then downloaded (permission-checked)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    options = models.JSONField(default=dict)  # annotator.exports.ExportOptions as a dict
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    file = models.FileField(max_length=500, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the broker last took this job's message; empty while it waits for the broker to come back.
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The worker writing it beats while it works (JOB_HEARTBEAT_SECONDS); the sweep takes a job whose
    # worker went quiet (killed) back to the queue, or fails it after RUN_MAX_ATTEMPTS claims.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        constraints = [one_of("status", ExportStatus, "export_status_valid")]

    def __str__(self) -> str:
        return f"export #{self.id} ({self.status})"


class Review(models.Model):
    """One reviewer's verdict on one submission. Kept after the image is re-annotated, so the accept
    rate per annotator counts every verdict, not only the latest."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="reviews")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decision = models.CharField(
        max_length=8, choices=[(ReviewStatus.ACCEPTED, "Accepted"), (ReviewStatus.REJECTED, "Rejected")]
    )
    comment = models.TextField(blank=True)
    # The reviewer fixed boxes and accepted in one step: the accepted boxes are the reviewer's edit.
    edited = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=[ReviewStatus.ACCEPTED, ReviewStatus.REJECTED]), name="review_decision_valid"
            ),
            # A rejection must tell the annotator what to fix.
            models.CheckConstraint(
                condition=~Q(decision=ReviewStatus.REJECTED) | ~Q(comment=""), name="review_reject_has_comment"
            ),
        ]
        indexes = [models.Index(fields=["image", "-id"], name="review_image_latest")]

    def __str__(self) -> str:
        return f"{self.image_id} {self.decision} by {self.reviewer_id}"


class AnnotationSnapshot(models.Model):
    """One annotator's independent labels of an image in the overlap sample (pass 1 or 2), kept as
    submitted, so agreement can be measured after the live annotations moved on."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="snapshots")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    pass_number = models.PositiveSmallIntegerField()
    boxes = models.JSONField(default=list)  # [[label_id, x, y, w, h], ...]
    tags = models.JSONField(default=list)  # [label_id, ...]
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "pass_number"]
        constraints = [
            models.UniqueConstraint(fields=["image", "pass_number"], name="snapshot_unique_pass"),
            models.CheckConstraint(condition=Q(pass_number__in=[1, 2]), name="snapshot_pass_1_or_2"),
        ]

    def __str__(self) -> str:
        return f"{self.image_id} pass {self.pass_number} by {self.annotator_id}"


class BucketSource(models.Model):
    """An S3-compatible bucket prefix a project imports its images from, and syncs from again.
    Credentials are never stored: ``credentials`` names a set the server's settings hold
    (BUCKET_CREDENTIALS); empty means boto3's own chain (AWS_ACCESS_KEY_ID ... in the environment)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="bucket_sources")
    endpoint_url = models.CharField(max_length=300, blank=True, help_text="Empty: AWS S3 itself.")
    region = models.CharField(max_length=64, blank=True)
    bucket = models.CharField(max_length=63)
    prefix = models.CharField(max_length=1024, blank=True)
    credentials = models.CharField(max_length=64, blank=True)
    sync_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Sync every this many minutes (by the workers' sweep); empty: on request only."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "endpoint_url", "bucket", "prefix"], name="bucket_source_unique"
            ),
            models.CheckConstraint(
                condition=Q(sync_minutes__isnull=True) | Q(sync_minutes__gte=1), name="bucket_source_sync_minutes_min"
            ),
        ]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def __str__(self) -> str:
        return self.url


class BucketOutcome(models.TextChoices):
    IMPORTED = "imported", "Imported"
    DUPLICATE = "duplicate", "A copy of an image already in the project"


class BucketObject(models.Model):
    """An object of a source already taken in (imported, or a copy of an image there): a sync skips
    it while its ETag is unchanged, without reading it. Refused objects get no row: they are tried
    again at the next sync (a refusal may pass later: a full project, a busy server)."""

    source = models.ForeignKey(BucketSource, on_delete=models.CASCADE, related_name="bucket_objects")
    key = models.CharField(max_length=1024)
    etag = models.CharField(max_length=200)
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=16, choices=BucketOutcome.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], name="bucket_object_unique"),
            one_of("outcome", BucketOutcome, "bucket_object_outcome_valid"),
        ]


class BucketImport(models.Model):
    """One import (or sync) of a source by a worker, with its progress and report."""

    source = models.ForeignKey(BucketSource, on_delete=models.CASCADE, related_name="imports")
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    listed = models.PositiveIntegerField(default=0, help_text="Objects listed so far")
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0, help_text="Copies of images already in the project")
    skipped = models.PositiveIntegerField(default=0, help_text="Taken in before, ETag unchanged: not read")
    ignored = models.PositiveIntegerField(default=0, help_text="Not images by their name (no image extension)")
    refused = models.PositiveIntegerField(default=0)
    refusals = models.JSONField(default=list, help_text="The first BUCKET_REPORT_REFUSALS: [{key, reason}]")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # as ExportJob's
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        constraints = [one_of("status", ExportStatus, "bucket_import_status_valid")]
        indexes = [models.Index(fields=["source", "status"], name="bucket_import_source_status")]

    def __str__(self) -> str:
        return f"bucket import #{self.id} ({self.status})"
