from django.contrib import admin

from annotator.models import AnnotationSnapshot, Box, Image, ImageTag, LabelClass, Membership, Project, Review


class LabelInline(admin.TabularInline):
    model = LabelClass
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "created_by", "created_at"]
    search_fields = ["name", "description"]
    inlines = [LabelInline, MembershipInline]


@admin.register(LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "project", "color", "hotkey", "order"]
    list_filter = ["project"]
    search_fields = ["name"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "original_name", "project", "status", "review_status", "width", "height", "submitted_by",
                    "submitted_at", "version"]
    list_filter = ["status", "review_status", "project"]
    search_fields = ["original_name", "sha256"]
    readonly_fields = ["sha256", "file", "thumbnail", "width", "height", "size_bytes", "created_at"]
    raw_id_fields = ["submitted_by", "locked_by", "overlap_first_by"]
    show_full_result_count = False  # a COUNT(*) over a million rows on every page is not worth it


@admin.register(Box)
class BoxAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "label", "x", "y", "w", "h", "source", "author", "created_at"]
    list_filter = ["source", "label__project"]
    raw_id_fields = ["image", "author"]
    list_select_related = ["image", "label", "author"]
    show_full_result_count = False


@admin.register(ImageTag)
class ImageTagAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "label", "source", "author", "created_at"]
    list_filter = ["source", "label__project"]
    raw_id_fields = ["image", "author"]
    list_select_related = ["image", "label", "author"]
    show_full_result_count = False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user"]


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "decision", "annotator", "reviewer", "created_at"]
    list_filter = ["decision", "image__project"]
    search_fields = ["comment"]
    raw_id_fields = ["image", "annotator", "reviewer"]
    list_select_related = ["image", "annotator", "reviewer"]
    show_full_result_count = False


@admin.register(AnnotationSnapshot)
class AnnotationSnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "pass_number", "annotator", "created_at"]
    list_filter = ["image__project"]
    raw_id_fields = ["image", "annotator"]
    list_select_related = ["image", "annotator"]
    show_full_result_count = False
