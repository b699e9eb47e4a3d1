from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from twinlabel.web import account, pages as views
from twinlabel.web.auth import ThrottledLoginView
from twinlabel.web import run_pages as labeling_views

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", account.account, name="account"),
    path("accounts/token/", account.account_token, name="account_token"),
    path("projects/<int:project_id>/", views.project_detail, name="project_detail"),
    path("projects/<int:project_id>/images/", views.image_grid, name="image_grid"),
    path("projects/<int:project_id>/labels/", views.label_add, name="label_add"),
    path("projects/<int:project_id>/labels/<int:label_id>/", views.label_edit, name="label_edit"),
    path("images/<int:image_id>/file", views.image_file, name="image_file"),
    path("images/<int:image_id>/thumb", views.image_thumbnail, name="image_thumbnail"),
    path("projects/<int:project_id>/annotate/", views.annotate, name="annotate"),
    path("projects/<int:project_id>/review/", views.review, name="review"),
    path("projects/<int:project_id>/settings", views.project_settings, name="project_settings"),
    path("projects/<int:project_id>/delete/", views.project_delete, name="project_delete"),
    path("projects/<int:project_id>/members/", views.members, name="members"),
    path("projects/<int:project_id>/members/<int:membership_id>/", views.member_edit, name="member_edit"),
    path("runs/<int:run_id>/files/<path:name>", labeling_views.run_file, name="run_file"),
    path("projects/<int:project_id>/dashboard/", labeling_views.project_dashboard, name="project_dashboard"),
    path("api/", include("twinlabel.web.api.urls")),
    path("admin/", admin.site.urls),
]

# Unmatched /api/ URLs and server errors answer the API's JSON error shape (twinlabel/web/api/errors.py).
handler404 = "twinlabel.web.api.errors.not_found"
handler500 = "twinlabel.web.api.errors.server_error"
