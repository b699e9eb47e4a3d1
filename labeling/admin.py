"""Model assistance in the Django admin. Runs, embeddings, suggestions and decisions are written by
workers and people through the app, so here they are read-only: look, filter, search, delete."""

import json

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from labeling.models import EmbeddingSet, ImageUncertainty, ProjectModelState, Suggestion, SuggestionDecision
from labeling.models import RUN_PROGRESS_FIELDS, TrainingRun
from labeling.selectors import run_files


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "project",
        "kind",
        "status",
        "progress",
        "loss",
        "images_per_s",
        "probe_map",
        "device",
        "worker",
        "attempts",
        "duration",
        "created_at",
    ]
    list_filter = ["kind", "status", "device", "project"]
    search_fields = ["id", "project__name", "worker", "device", "error"]
    list_select_related = ["project"]
    date_hierarchy = "created_at"
    raw_id_fields = ["backbone_run", "created_by"]
    fieldsets = [
        (None, {"fields": ["project", "kind", "status", "backbone_run", "created_by", "pretty_config"]}),
        ("Progress", {"fields": [*RUN_PROGRESS_FIELDS, "loss_points", "cancel_requested"]}),
        (
            "Worker",
            {
                "fields": [
                    "device",
                    "worker",
                    "attempts",
                    "created_at",
                    "started_at",
                    "heartbeat_at",
                    "finished_at",
                    "duration",
                    "error",
                ]
            },
        ),
        ("Results", {"fields": ["pretty_metrics", "files"]}),
    ]
    readonly_fields = [f.name for f in TrainingRun._meta.fields] + [
        "pretty_config",
        "pretty_metrics",
        "loss_points",
        "duration",
        "files",
        "progress",
        "probe_map",
    ]

    @admin.display(description="progress")
    def progress(self, run):
        return f"{run.epoch}/{run.epochs} epochs" if run.epochs else ""

    @admin.display(description="probe CV mAP")
    def probe_map(self, run):
        value = ((run.metrics or {}).get("cv") or {}).get("map")
        return "" if value is None else f"{value:.3f}"

    @admin.display(description="duration")
    def duration(self, run):
        end = run.finished_at or run.heartbeat_at
        return f"{(end - run.started_at).total_seconds():.0f} s" if run.started_at and end else ""

    @admin.display(description="config")
    def pretty_config(self, run):
        return format_html("<pre>{}</pre>", json.dumps(run.config, indent=2, sort_keys=True))

    @admin.display(description="metrics")
    def pretty_metrics(self, run):
        return format_html("<pre>{}</pre>", json.dumps(run.metrics, indent=2, sort_keys=True))

    @admin.display(description="loss history")
    def loss_points(self, run):
        history = run.loss_history or []
        if not history:
            return "none"
        return f"{len(history)} points, step {history[0][0]} loss {history[0][1]:.3f} → step {history[-1][0]} loss {history[-1][1]:.3f}"

    @admin.display(description="TensorBoard / profiler files")
    def files(self, run):
        return (
            format_html_join(" · ", '<a href="{}">{}</a>', ((f["url"], f["name"]) for f in run_files(run_id=run.id)))
            or "none"
        )


@admin.register(EmbeddingSet)
class EmbeddingSetAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "run", "resolution", "count", "dim", "created_at"]
    list_filter = ["project", "resolution"]
    search_fields = ["path", "project__name"]
    list_select_related = ["project", "run"]
    readonly_fields = [f.name for f in EmbeddingSet._meta.fields]


@admin.register(ProjectModelState)
class ProjectModelStateAdmin(ReadOnlyAdmin):
    list_display = ["project", "pretrain_run", "probe_run", "detector_run", "submissions_since_fit", "boxed_since_fit"]
    search_fields = ["project__name"]
    list_select_related = ["project", "pretrain_run", "probe_run", "detector_run"]
    readonly_fields = [
        "project",
        "pretrain_run",
        "probe_run",
        "detector_run",
        "submissions_since_fit",
        "boxed_since_fit",
    ]


@admin.register(Suggestion)
class SuggestionAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "label", "probability", "predicted", "run"]
    list_filter = ["predicted", "label__project", "label"]
    search_fields = ["image__original_name", "label__name"]
    raw_id_fields = ["image", "run"]
    list_select_related = ["image", "label", "run"]
    show_full_result_count = False


@admin.register(ImageUncertainty)
class ImageUncertaintyAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "score", "run"]
    list_filter = ["run__project"]
    search_fields = ["image__original_name"]
    raw_id_fields = ["image", "run"]
    list_select_related = ["image", "run"]
    show_full_result_count = False


@admin.register(SuggestionDecision)
class SuggestionDecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "label", "decision", "probability", "user", "run", "decided_at"]
    list_filter = ["decision", "label__project", "label"]
    search_fields = ["image__original_name", "label__name", "user__username"]
    raw_id_fields = ["image", "run", "user"]
    list_select_related = ["image", "label", "user", "run"]
    date_hierarchy = "decided_at"
