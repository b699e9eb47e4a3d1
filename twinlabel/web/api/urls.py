"""The API's URLs, all under /api/ (docs/api.md)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from twinlabel.web.api import docs, exchange, views
from twinlabel.web.api import model as labeling

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", docs.api_docs, name="api_docs"),
    path("projects/", views.projects, name="api_projects"),
    path("projects/<int:project_id>/", views.project_detail, name="api_project"),
    path("projects/<int:project_id>/labels/", views.project_labels, name="api_project_labels"),
    path("projects/<int:project_id>/images/", views.project_images, name="api_project_images"),
    path("projects/<int:project_id>/queue/next/", views.queue_next, name="api_queue_next"),
    path("projects/<int:project_id>/queue/release/", views.queue_release, name="api_queue_release"),
    path("projects/<int:project_id>/export/", exchange.project_export, name="api_project_export"),
    path("projects/<int:project_id>/import/", exchange.project_import, name="api_project_import"),
    path("exports/<int:job_id>/", exchange.export_job, name="api_export_job"),
    path("exports/<int:job_id>/download/", exchange.export_download, name="api_export_download"),
    path("images/<int:image_id>/annotations/", views.image_annotations, name="api_image_annotations"),
    path("images/<int:image_id>/submit/", views.image_submit, name="api_image_submit"),
    path("images/<int:image_id>/skip/", views.image_skip, name="api_image_skip"),
    path("images/<int:image_id>/review/", views.image_review, name="api_image_review"),
    re_path(r"^images/(?P<image_id>[0-9]+)/suggestions/(?P<label_id>[0-9]+)/(?P<decision>accept|reject|undo)/$",
            labeling.image_suggestion_decide, name="api_suggestion_decide"),
    path("images/<int:image_id>/suggestions/accept-all/", labeling.image_suggestions_accept_all,
         name="api_suggestions_accept_all"),
    path("projects/<int:project_id>/suggestions/", labeling.project_suggestions, name="api_project_suggestions"),
    path("projects/<int:project_id>/runs/", labeling.project_runs, name="api_project_runs"),
    path("runs/<int:run_id>/", labeling.run_detail, name="api_run_detail"),
    path("runs/<int:run_id>/cancel/", labeling.run_cancel, name="api_run_cancel"),
    path("runs/<int:run_id>/retry/", labeling.run_retry, name="api_run_retry"),
    path("projects/<int:project_id>/suggestion-settings/", labeling.suggestion_settings,
         name="api_suggestion_settings"),
    path("projects/<int:project_id>/dashboard/", labeling.project_dashboard, name="api_project_dashboard"),
    path("projects/<int:project_id>/embedding-map/", labeling.embedding_map, name="api_embedding_map"),
]
