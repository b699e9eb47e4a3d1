"""The site's URLs: the pages (twinlabel/web/pages/), the REST API under /api/
(twinlabel/web/api/urls.py) and Django's admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from twinlabel.web.auth import ThrottledLoginView
from twinlabel.web.pages import account, annotate, audit, images, labels, members, projects, runs, site

# fmt: off  (a table: one route a line reads best)
urlpatterns = [
    path("", projects.project_list, name="project_list"),
    path("healthz", site.healthz, name="healthz"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", account.account, name="account"),
    path("accounts/token/", account.account_token, name="account_token"),
    path("projects/<int:project_id>/", projects.project_detail, name="project_detail"),
    path("projects/<int:project_id>/images/", images.image_grid, name="image_grid"),
    path("projects/<int:project_id>/labels/", labels.label_add, name="label_add"),
    path("projects/<int:project_id>/labels/<int:label_id>/", labels.label_edit, name="label_edit"),
    path("images/<int:image_id>/file", images.image_file, name="image_file"),
    path("images/<int:image_id>/thumb", images.image_thumbnail, name="image_thumbnail"),
    path("projects/<int:project_id>/annotate/", annotate.annotate, name="annotate"),
    path("projects/<int:project_id>/review/", annotate.review, name="review"),
    path("projects/<int:project_id>/audit/", audit.audit, name="audit"),
    path("projects/<int:project_id>/settings", projects.project_settings, name="project_settings"),
    path("projects/<int:project_id>/delete/", projects.project_delete, name="project_delete"),
    path("projects/<int:project_id>/members/", members.members, name="members"),
    path("projects/<int:project_id>/members/<int:membership_id>/", members.member_edit, name="member_edit"),
    path("runs/<int:run_id>/files/<path:name>", runs.run_file, name="run_file"),
    path("projects/<int:project_id>/dashboard/", runs.project_dashboard, name="project_dashboard"),
    path("api/", include("twinlabel.web.api.urls")),
    path("admin/", admin.site.urls),
]
# fmt: on

# Unmatched /api/ URLs and server errors answer the API's JSON error shape (twinlabel/web/api/errors.py).
handler404 = "twinlabel.web.api.errors.not_found"
handler500 = "twinlabel.web.api.errors.server_error"
