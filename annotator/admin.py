from django.contrib import admin
from django.db.models import Count

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
    list_display = ["id", "name", "image_count", "member_count", "created_by", "created_at"]
    search_fields = ["name", "description"]
    list_select_related = ["created_by"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at"]
    inlines = [LabelInline, MembershipInline]

    def get_queryset(self, request):
        # Counted in the list's one query (correlated subqueries, not a join that multiplies rows).
        from django.db.models import OuterRef, Subquery

        def count(model):
            return Subquery(
                model.objects.filter(project=OuterRef("pk"))
                .order_by()
                .values("project")
                .annotate(n=Count("id"))
                .values("n")[:1]
            )

        return super().get_queryset(request).annotate(n_images=count(Image), n_members=count(Membership))

    # Deleting goes through the one service (rows in the order PROTECT needs, then the files), and
    # the confirmation page names the counts instead of listing every image and box.
    def get_deleted_objects(self, objs, request):
        from annotator.services.deletion import project_delete_counts, project_delete_summary

        summaries = [f"{project}: {project_delete_summary(project_delete_counts(project=project))}" for project in objs]
        perms_needed = set() if all(self.has_delete_permission(request, p) for p in objs) else {"project"}
        return summaries, {"projects": len(summaries)}, perms_needed, []

    def delete_model(self, request, obj):
        from annotator.services.deletion import project_delete

        project_delete(project=obj)

    def delete_queryset(self, request, queryset):
        from annotator.services.deletion import project_delete

        for project in queryset:
            project_delete(project=project)

    @admin.display(description="images", ordering="n_images")
    def image_count(self, project):
        return project.n_images or 0

    @admin.display(description="members", ordering="n_members")
    def member_count(self, project):
        return project.n_members or 0


@admin.register(LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "project", "color", "hotkey", "order"]
    list_filter = ["project"]
    search_fields = ["name", "project__name"]
    list_select_related = ["project"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "original_name",
        "project",
        "status",
        "review_status",
        "width",
        "height",
        "box_count",
        "human_tag_count",
        "submitted_by",
        "submitted_at",
        "work_seconds",
        "version",
    ]
    list_filter = ["status", "review_status", "project"]
    search_fields = ["=id", "original_name", "sha256"]
    readonly_fields = [
        "sha256",
        "file",
        "thumbnail",
        "width",
        "height",
        "size_bytes",
        "created_at",
        "opened_at",
        "work_seconds",
        "box_count",
        "human_tag_count",
    ]
    raw_id_fields = ["submitted_by", "locked_by", "overlap_first_by"]
    list_select_related = ["project", "submitted_by"]
    show_full_result_count = False  # a COUNT(*) over a million rows on every page is not worth it


class AuthoredAdmin(admin.ModelAdmin):
    """Boxes and tags: an image's labels, each by an author (or the model)."""

    list_filter = ["source", "label__project"]
    search_fields = ["image__original_name", "label__name", "author__username"]
    raw_id_fields = ["image", "author"]
    list_select_related = ["image", "label", "author"]
    show_full_result_count = False


@admin.register(Box)
class BoxAdmin(AuthoredAdmin):
    list_display = ["id", "image", "label", "x", "y", "w", "h", "source", "author", "created_at"]


@admin.register(ImageTag)
class ImageTagAdmin(AuthoredAdmin):
    list_display = ["id", "image", "label", "source", "author", "created_at"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    list_select_related = ["user", "project"]
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
