"""What model assistance stores: training runs with their live progress, embedding sets,
suggestions (never annotations: a person turns one into a tag by accepting it) and decisions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotator.models import one_of, Image, LabelClass, Project


class RunKind(models.TextChoices):
    PRETRAIN = "pretrain", "Pretraining (Barlow Twins)"
    PROBE = "probe", "Linear probe + suggestions"
    # Predictions of another model, imported (labeling/external.py): no worker ever runs it.
    EXTERNAL = "external", "External model's predictions"
    DETECTOR = "detector", "Box detector + box suggestions"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


# A run's live progress, as the worker writes it (labeling.runs.RunMonitor); the admin and the
# dashboard show these together.
RUN_PROGRESS_FIELDS = ("epoch", "epochs", "step", "steps_per_epoch", "loss", "images_per_s")


class TrainingRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    config = models.JSONField(default=dict)
    # A refit's second stage (labeling.suggesting.probe_follow): a probe fit that fine-tunes the
    # backbone. It may be queued or running beside a first stage, which it pauses for.
    finetune_stage = models.BooleanField(default=False)
    # A probe run uses the features of one pretraining run.
    backbone_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="probes")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Live progress, written by the worker as it goes.
    epoch = models.PositiveIntegerField(default=0)
    epochs = models.PositiveIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    steps_per_epoch = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    images_per_s = models.FloatField(null=True, blank=True)
    loss_history = models.JSONField(default=list, blank=True)  # [[step, loss], ...] as reported
    # When a running pretraining expects to finish, from its measured step rate (the API shows eta_s).
    eta_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=100, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="Celery node name of the worker running it.")
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the broker last took this run's message; empty while a queued run waits for the broker
    # to come back (the sweep in annotator/sweep.py sends it again).
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            one_of("kind", RunKind, "run_kind_valid"),
            one_of("status", RunStatus, "run_status_valid"),
            # One pretraining and one probe fit at a time per project: a burst of triggers
            # (a button pressed twice, many submissions at once) queues one run, not many. A probe
            # fit's fine-tuning stage counts apart: a refit that falls due while it fine-tunes (minutes
            # on a CPU) is queued at once, and the fine-tuning pauses between two epochs for it.
            models.UniqueConstraint(
                fields=["project", "kind", "finetune_stage"],
                condition=Q(status__in=ACTIVE_STATUSES),
                name="run_one_active_per_kind_and_stage",
            ),
        ]
        indexes = [models.Index(fields=["project", "kind", "-id"], name="run_project_kind")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class EmbeddingSet(models.Model):
    """Frozen backbone features of a project's images: a directory of one file per block of ids."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="embedding_sets")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="embedding_sets")
    path = models.CharField(max_length=500)
    resolution = models.PositiveIntegerField()
    count = models.PositiveIntegerField()
    dim = models.PositiveIntegerField()
    # Features are stored one file per block of this many image ids (labeling/data.py).
    block_size = models.PositiveIntegerField(default=50_000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class ProjectModelState(models.Model):
    """Which runs a project's suggestions come from. Swapping ``probe_run`` in one UPDATE is how a
    new run's suggestions replace the old ones all at once: nobody sees half of a run."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="model_state")
    pretrain_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    probe_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The detector run whose box suggestions people see (swapped in whole, as probe_run).
    detector_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Submitted images with boxes since the last detector fit was queued: at DETECTOR_REFIT_EVERY it refits.
    boxed_since_fit = models.PositiveIntegerField(default=0)
    # Submissions since the last probe fit was queued: at PROBE_REFIT_EVERY the probe refits.
    submissions_since_fit = models.PositiveIntegerField(default=0)
    # A suggestion is confident (pre-ticked, in Accept all) only where the 95 % lower bound of its
    # label's precision meets this target (labeling/ml/confidence.py); admins may set it per label.
    precision_target = models.FloatField(default=0.9)
    label_targets = models.JSONField(default=dict, blank=True, help_text="{label id: precision target}")
    # Auto-accept (off by default): at each fit, suggestions at or above a stricter threshold (the
    # bound of precision meets ``auto_accept_target``) become tags of source ``model_auto`` on
    # unlabeled images, and ``audit_rate`` of them, drawn at random, wait for a reviewer's audit.
    auto_accept = models.BooleanField(default=False)
    auto_accept_target = models.FloatField(default=0.97)
    audit_rate = models.FloatField(default=0.1)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(precision_target__gt=0) & Q(precision_target__lt=1),
                name="model_state_precision_target_range",
            ),
            models.CheckConstraint(
                condition=Q(auto_accept_target__gt=0) & Q(auto_accept_target__lt=1),
                name="model_state_auto_target_range",
            ),
            models.CheckConstraint(
                condition=Q(audit_rate__gte=0) & Q(audit_rate__lte=1), name="model_state_audit_rate"
            ),
        ]


class Suggestion(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="suggestions")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="suggestions")
    label = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="suggestions")
    probability = models.FloatField()
    predicted = models.BooleanField(help_text="At or above the label's threshold: shown as a suggested tag.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "image", "label"], name="suggestion_unique_per_run"),
            models.CheckConstraint(
                condition=Q(probability__gte=0) & Q(probability__lte=1), name="suggestion_probability_range"
            ),
        ]
        indexes = [
            # "Review everything suggested as dog": WHERE run=? AND label=? ORDER BY probability DESC.
            models.Index(fields=["run", "label", "-probability"], name="suggestion_run_label_p"),
        ]


class ImageUncertainty(models.Model):
    """The probe's doubt about an unlabeled image: the queue serves the most uncertain first."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="uncertainties")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="uncertainties")
    score = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "image"], name="uncertainty_unique_per_run")]
        indexes = [models.Index(fields=["run", "-score"], name="uncertainty_run_score")]


class CurationKind(models.TextChoices):
    DIVERSE = "diverse", "Diverse first (greedy k-center on the embeddings)"
    HYBRID = "hybrid", "Uncertain and diverse"
    MISTAKE = "mistake", "Likely mistake (the model disagrees with the person)"
    DUPLICATE = "duplicate", "Near-duplicate (in a group of images above the cosine threshold)"
    RARE = "rare", "Likely to hold a label with few positives"


class CurationScore(models.Model):
    """A ranking computed from the embeddings (labeling/curation.py), higher first: "diverse" and
    "duplicate" rows belong to a pretraining run (the order of the cold start; the near-duplicate
    groups, score = the group's size), "hybrid" and "mistake" rows to a probe
    run (its uncertainty picked apart by k-center; its out-of-fold disagreement with the labels; the
    images likeliest to hold a rare label, the top of each block).
    A mistake row names the doubted label and whether the person gave it."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="curation_scores")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="curation_scores")
    kind = models.CharField(max_length=16, choices=CurationKind.choices)
    score = models.FloatField()
    label = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    given = models.BooleanField(null=True, blank=True)
    probability = models.FloatField(null=True, blank=True)  # the out-of-fold probability of that label
    group = models.BigIntegerField(null=True, blank=True)  # a duplicate's group: its smallest image id

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "kind", "image"], name="curation_unique_per_run")]
        indexes = [
            models.Index(fields=["run", "kind", "-score", "image"], name="curation_rank"),
            models.Index(fields=["run", "kind", "group", "image"], name="curation_group"),
        ]


class SuggestionShard(models.Model):
    """One block of image ids scored for a probe run: which worker wrote it, and how many images."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="shards")
    block = models.PositiveIntegerField(help_text="Image ids block * SHARD_IMAGES up to the next block.")
    worker = models.CharField(max_length=200)
    images = models.PositiveIntegerField()
    finished_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "block"], name="shard_unique_per_run")]


class BoxSuggestion(models.Model):
    """A box the detector suggests on a not yet submitted image, in image pixels; never an annotation."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="box_suggestions")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="box_suggestions")
    label = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="box_suggestions")
    x = models.FloatField()
    y = models.FloatField()
    w = models.FloatField()
    h = models.FloatField()
    score = models.FloatField()
    predicted = models.BooleanField(help_text="At or above the label's precision-targeted threshold: confident.")
    shown = models.BooleanField(
        default=True,
        help_text="Worth drawing for a person to judge (a confident one is drawn anyway): at or above the "
        "label's shown_from (labeling.trust.SHOW_PRECISION) and not a near-copy of a better drawn box.",
    )

    class Meta:
        ordering = ["-score"]
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=0) & Q(score__lte=1), name="box_suggestion_score_range"),
            models.CheckConstraint(condition=Q(w__gt=0) & Q(h__gt=0), name="box_suggestion_size_positive"),
        ]
        indexes = [models.Index(fields=["run", "image", "-score"], name="box_suggestion_run_image")]


class BoxDecision(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    ADJUSTED = "adjusted", "Accepted with its geometry changed"
    REJECTED = "rejected", "Rejected"


class BoxSuggestionDecision(models.Model):
    """What a person did with a suggested box. The suggestion's own row goes with its run, so what
    was shown (label, geometry, score) is copied here; one decision per shown suggestion."""

    run = models.ForeignKey(TrainingRun, null=True, on_delete=models.SET_NULL, related_name="box_decisions")
    suggestion_id = models.BigIntegerField(help_text="The BoxSuggestion decided on (its row may be gone).")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="box_suggestion_decisions")
    label = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="box_suggestion_decisions")
    x = models.FloatField()
    y = models.FloatField()
    w = models.FloatField()
    h = models.FloatField()
    score = models.FloatField()
    decision = models.CharField(max_length=16, choices=BoxDecision.choices)
    box_id = models.BigIntegerField(null=True, blank=True, help_text="The Box an accept made (undo removes it).")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["suggestion_id"], name="box_decision_unique_per_suggestion"),
            one_of("decision", BoxDecision, "box_decision_valid"),
        ]
        indexes = [models.Index(fields=["run", "label"], name="box_decision_run_label")]


class Decision(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class SuggestionDecision(models.Model):
    """What a person did with a suggested label; the last word per image and label counts."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="suggestion_decisions")
    label = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="suggestion_decisions")
    run = models.ForeignKey(TrainingRun, null=True, on_delete=models.SET_NULL, related_name="decisions")
    probability = models.FloatField()
    decision = models.CharField(max_length=16, choices=Decision.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "label"], name="decision_unique_per_image_label"),
            one_of("decision", Decision, "decision_valid"),
        ]


class AuditResult(models.TextChoices):
    PENDING = "pending", "Waiting for an audit"
    CONFIRMED = "confirmed", "Confirmed"
    REJECTED = "rejected", "Rejected"


class AutoTag(models.Model):
    """A tag the model set by itself (auto-accept): which fit, at what probability, and, for the
    random audit sample, what the reviewer found. The audited share measures the auto-accepted
    tags' real precision, label by label."""

    run = models.ForeignKey(TrainingRun, null=True, on_delete=models.SET_NULL, related_name="auto_tags")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="auto_tags")
    label = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="auto_tags")
    probability = models.FloatField()
    # Blank: not drawn for the audit sample; otherwise pending until a reviewer confirms or rejects it.
    audit_result = models.CharField(max_length=16, choices=AuditResult.choices, blank=True)
    audited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    audited_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "label"], name="auto_tag_unique_per_image_label"),
            models.CheckConstraint(
                condition=Q(audit_result="") | Q(audit_result__in=AuditResult.values), name="auto_tag_audit_valid"
            ),
        ]
        indexes = [models.Index(fields=["audit_result", "id"], name="auto_tag_audit")]
