from django.contrib import admin

from labeling.models import (EmbeddingSet, ImageUncertainty, ProjectModelState, Suggestion, SuggestionDecision,
                             TrainingRun)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "status", "epoch", "epochs", "loss", "images_per_s", "device", "worker",
                    "attempts", "created_at", "finished_at"]
    list_filter = ["kind", "status", "project"]
    search_fields = ["worker", "error"]
    # Runs are written by workers; the admin reads them (cancel from the project page or the API).
    readonly_fields = [f.name for f in TrainingRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(EmbeddingSet)
class EmbeddingSetAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "run", "resolution", "count", "dim", "created_at"]
    list_filter = ["project"]
    readonly_fields = [f.name for f in EmbeddingSet._meta.fields]


@admin.register(ProjectModelState)
class ProjectModelStateAdmin(admin.ModelAdmin):
    list_display = ["project", "pretrain_run", "probe_run", "submissions_since_fit"]


@admin.register(Suggestion)
class SuggestionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "label", "probability", "predicted", "run"]
    list_filter = ["predicted", "label__project"]
    raw_id_fields = ["image", "run"]
    list_select_related = ["image", "label", "run"]
    show_full_result_count = False


@admin.register(ImageUncertainty)
class ImageUncertaintyAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "score", "run"]
    raw_id_fields = ["image", "run"]
    show_full_result_count = False


@admin.register(SuggestionDecision)
class SuggestionDecisionAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "label", "decision", "probability", "user", "decided_at"]
    list_filter = ["decision", "label__project"]
    raw_id_fields = ["image", "run", "user"]
    list_select_related = ["image", "label", "user"]
