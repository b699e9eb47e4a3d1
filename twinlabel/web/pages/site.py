"""Site-wide answers: the health check and the CSRF failure page."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotator.access import CSRF_FAILURE_MESSAGE
from annotator.models import Project


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    message = CSRF_FAILURE_MESSAGE
    if request.path.startswith("/api/"):
        return JsonResponse({"error": message}, status=403)
    return render(request, "web/csrf_failure.html", {"message": message}, status=403)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    # Not only "SELECT 1": a database without our tables (not migrated, or the wrong one) answers
    # that too, and then every page would fail while the health check said all was well.
    try:
        Project.objects.order_by().values_list("id")[:1].exists()
    except DatabaseError as error:
        return JsonResponse(
            {
                "ok": False,
                "database": connection.vendor,
                "error": f"the database is not usable ({error}); run manage.py migrate",
            },
            status=503,
        )
    return JsonResponse({"ok": True, "database": connection.vendor})
