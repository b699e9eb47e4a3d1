"""The API's URLs, all under /api/ (docs/api.md): one module per resource."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from twinlabel.web.api import annotations, dashboard, docs, exchange, images, labels, predictions, projects, queue, runs
from twinlabel.web.api import buckets, curation, suggestions, webhooks

# fmt: off  (a table: one route a line reads best)
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", docs.api_docs, name="api_docs"),
    path("docs/swagger/", docs.api_swagger, name="api_swagger"),
    path("docs/redoc/", docs.api_redoc, name="api_redoc"),
    path("docs/redoc/redoc.standalone.js", docs.api_redoc_bundle, name="api_redoc_bundle"),
    path("projects/", projects.projects, name="api_projects"),
    path("projects/<int:project_id>/", projects.project_detail, name="api_project"),
    path("projects/<int:project_id>/labels/", labels.project_labels, name="api_project_labels"),
    path("projects/<int:project_id>/images/", images.project_images, name="api_project_images"),
    path("projects/<int:project_id>/duplicates/", curation.project_duplicates, name="api_project_duplicates"),
    path("projects/<int:project_id>/bulk-tags/", curation.project_bulk_tags, name="api_project_bulk_tags"),
    path(
        "projects/<int:project_id>/bulk-suggestions/",
        curation.project_bulk_suggestions,
        name="api_project_bulk_suggestions",
    ),
    path("projects/<int:project_id>/queue/next/", queue.queue_next, name="api_queue_next"),
    path("projects/<int:project_id>/queue/release/", queue.queue_release, name="api_queue_release"),
    path("projects/<int:project_id>/export/", exchange.project_export, name="api_project_export"),
    path("projects/<int:project_id>/import/", exchange.project_import, name="api_project_import"),
    path(
        "projects/<int:project_id>/bucket-imports/", buckets.project_bucket_imports, name="api_project_bucket_imports"
    ),
    path("bucket-imports/<int:job_id>/", buckets.bucket_import, name="api_bucket_import"),
    path("exports/<int:job_id>/", exchange.export_job, name="api_export_job"),
    path("exports/<int:job_id>/download/", exchange.export_download, name="api_export_download"),
    path("images/<int:image_id>/annotations/", annotations.image_annotations, name="api_image_annotations"),
    path("images/<int:image_id>/submit/", annotations.image_submit, name="api_image_submit"),
    path("images/<int:image_id>/skip/", annotations.image_skip, name="api_image_skip"),
    path("images/<int:image_id>/review/", annotations.image_review, name="api_image_review"),
    path("images/<int:image_id>/similar/", curation.image_similar, name="api_image_similar"),
    re_path(
        r"^images/(?P<image_id>[0-9]+)/suggestions/(?P<label_id>[0-9]+)/(?P<decision>accept|reject|undo)/$",
        suggestions.image_suggestion_decide,
        name="api_suggestion_decide",
    ),
    path(
        "images/<int:image_id>/suggestions/accept-all/",
        suggestions.image_suggestions_accept_all,
        name="api_suggestions_accept_all",
    ),
    re_path(
        r"^images/(?P<image_id>[0-9]+)/box-suggestions/(?P<suggestion_id>[0-9]+)/(?P<decision>accept|reject|undo)/$",
        suggestions.image_box_suggestion_decide,
        name="api_box_suggestion_decide",
    ),
    path(
        "images/<int:image_id>/box-suggestions/accept-all/",
        suggestions.image_box_suggestions_accept_all,
        name="api_box_suggestions_accept_all",
    ),
    path("projects/<int:project_id>/suggestions/", suggestions.project_suggestions, name="api_project_suggestions"),
    path("projects/<int:project_id>/audit/next/", suggestions.audit_next, name="api_audit_next"),
    path("auto-tags/<int:auto_tag_id>/audit/", suggestions.audit_decide, name="api_audit_decide"),
    path("projects/<int:project_id>/predictions/", predictions.project_predictions, name="api_project_predictions"),
    path("projects/<int:project_id>/runs/", runs.project_runs, name="api_project_runs"),
    path("runs/<int:run_id>/", runs.run_detail, name="api_run_detail"),
    path("runs/<int:run_id>/cancel/", runs.run_cancel, name="api_run_cancel"),
    path("runs/<int:run_id>/retry/", runs.run_retry, name="api_run_retry"),
    path(
        "projects/<int:project_id>/suggestion-settings/",
        suggestions.suggestion_settings,
        name="api_suggestion_settings",
    ),
    path("projects/<int:project_id>/webhooks/", webhooks.project_webhooks, name="api_project_webhooks"),
    path("webhooks/<int:webhook_id>/", webhooks.webhook_detail, name="api_webhook"),
    path("webhooks/<int:webhook_id>/test/", webhooks.webhook_test, name="api_webhook_test"),
    path("webhooks/<int:webhook_id>/deliveries/", webhooks.webhook_deliveries, name="api_webhook_deliveries"),
    path("projects/<int:project_id>/dashboard/", dashboard.project_dashboard, name="api_project_dashboard"),
    path("projects/<int:project_id>/embedding-map/", dashboard.embedding_map, name="api_embedding_map"),
]
# fmt: on
