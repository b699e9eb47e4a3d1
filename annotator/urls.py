from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from annotator import api, views
from labeling import api as labeling_api
from labeling import views as labeling_views

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/<int:project_id>/", views.project_detail, name="project_detail"),
    path("projects/<int:project_id>/upload", views.project_upload, name="project_upload"),
    path("projects/<int:project_id>/images/", views.image_grid, name="image_grid"),
    path("projects/<int:project_id>/labels/", views.label_add, name="label_add"),
    path("projects/<int:project_id>/labels/<int:label_id>/", views.label_edit, name="label_edit"),
    path("images/<int:image_id>/file", views.image_file, name="image_file"),
    path("images/<int:image_id>/thumb", views.image_thumbnail, name="image_thumbnail"),
    path("projects/<int:project_id>/annotate/", views.annotate, name="annotate"),
    path("projects/<int:project_id>/review/", views.review, name="review"),
    path("projects/<int:project_id>/settings", views.project_settings, name="project_settings"),
    path("projects/<int:project_id>/members/", views.members, name="members"),
    path("projects/<int:project_id>/members/<int:membership_id>/", views.member_edit, name="member_edit"),
    path("api/images/<int:image_id>/annotations", api.image_annotations, name="api_image_annotations"),
    path("api/images/<int:image_id>/submit", api.image_submit, name="api_image_submit"),
    path("api/images/<int:image_id>/skip", api.image_skip, name="api_image_skip"),
    path("api/images/<int:image_id>/review", api.image_review, name="api_image_review"),
    path("api/projects/<int:project_id>/queue/next", api.queue_next, name="api_queue_next"),
    path("api/projects/<int:project_id>/runs/", labeling_api.project_runs, name="api_project_runs"),
    path("api/runs/<int:run_id>/", labeling_api.run_detail, name="api_run_detail"),
    path("api/runs/<int:run_id>/cancel/", labeling_api.run_cancel, name="api_run_cancel"),
    path("api/runs/<int:run_id>/retry/", labeling_api.run_retry, name="api_run_retry"),
    path("runs/<int:run_id>/files/<path:name>", labeling_views.run_file, name="run_file"),
    path("projects/<int:project_id>/dashboard/", labeling_views.project_dashboard, name="project_dashboard"),
    path("api/projects/<int:project_id>/dashboard", labeling_api.project_dashboard, name="api_project_dashboard"),
    path("api/projects/<int:project_id>/embedding-map", labeling_api.embedding_map, name="api_embedding_map"),
    re_path(r"^api/images/(?P<image_id>[0-9]+)/suggestions/(?P<label_id>[0-9]+)/(?P<decision>accept|reject)$",
            labeling_api.suggestion_decide, name="api_suggestion_decide"),
    path("api/images/<int:image_id>/suggestions/accept-all", labeling_api.suggestions_accept_all,
         name="api_suggestions_accept_all"),
    path("admin/", admin.site.urls),
]
