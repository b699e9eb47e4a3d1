"""One error shape for the whole API: ``{"error": "<what to fix>"}`` (plus ``fields`` for form
errors, ``current`` on a 409), whatever raised it: DRF, Django, or a service."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, TooManyFilesSent, ValidationError
from django.db import DatabaseError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from annotator.access import CSRF_FAILURE_MESSAGE, LimitReached
from annotator.models import Image
from annotator.services.images import StorageFull
from annotator.services.locking import StaleVersion
from twinlabel.web import compose


class BadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def exception_handler(exc, context):
    if isinstance(exc, StaleVersion):
        current = compose.annotation_state(image=Image.objects.get(pk=exc.image_id))
        return Response(
            {"error": "Someone else changed this image since you opened it.", "current": current}, status=409
        )
    if isinstance(exc, RecursionError):  # DRF's JSON parser, on a body nested thousands deep
        return Response({"error": "The request body nests lists or objects too deeply."}, status=400)
    if isinstance(exc, TooManyFilesSent):
        return Response(
            {
                "error": f"One request may carry at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files; "
                "send them in smaller batches."
            },
            status=413,
        )
    if isinstance(exc, LimitReached):
        return Response({"error": " ".join(exc.messages)}, status=429)
    if isinstance(exc, ValidationError):
        return Response({"error": " ".join(exc.messages)}, status=400)
    if isinstance(exc, StorageFull):
        return Response({"error": str(exc)}, status=507)
    if database_full(exc):  # the request's transaction rolled back whole
        return Response({"error": DATABASE_FULL_MESSAGE}, status=507)
    if isinstance(exc, PermissionDenied):
        return Response({"error": str(exc) or "Not allowed."}, status=403)
    if isinstance(exc, Http404):
        return Response({"error": str(exc) or "Not found."}, status=404)
    if isinstance(exc, exceptions.ParseError):
        exc = BadRequest("The request body is not valid JSON." if "JSON" in str(exc.detail) else exc.detail)
    if isinstance(exc, exceptions.PermissionDenied) and str(exc.detail).startswith("CSRF Failed"):
        exc = exceptions.PermissionDenied(CSRF_FAILURE_MESSAGE)  # DRF's SessionAuthentication said it
    if isinstance(exc, exceptions.NotAuthenticated):
        exc.detail = "Log in first, or send “Authorization: Token <key>”."
    response = drf_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"error": _first_message(detail), "fields": detail}
    else:
        response.data = {"error": str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)}
    return response


DATABASE_FULL_MESSAGE = (
    "The server's disk is full: this change was not saved, and nothing else changed. "
    "Tell the administrator; it can go through once there is space again."
)


def database_full(exc: BaseException) -> bool:
    """A database write refused for lack of disk space: PostgreSQL's disk_full (SQLSTATE 53100),
    SQLite's SQLITE_FULL ("database or disk is full")."""
    if not isinstance(exc, DatabaseError):
        return False
    return getattr(exc.__cause__, "sqlstate", None) == "53100" or "database or disk is full" in str(exc)


def not_found(request, exception):
    """Django's 404 for URLs no route matches (``/api/images/-1/submit/``): JSON under /api/, as the
    API's own 404s are, so that an API client never gets an HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": f"No API endpoint at {request.path}; see /api/docs/."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Server error; it has been logged."}, status=500)
    return defaults.server_error(request)


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        inner = _first_message(value)
        return inner if key == "non_field_errors" else f"“{key}”: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What to fix"},
        "fields": {"type": "object", "description": "Form errors by field (400 from a form only)"},
        "current": {"type": "object", "description": "The image's current state (409 only)"},
    },
}
_ERRORS = {
    "400": "The request is not valid: “error” says what to fix",
    "401": "Not logged in and no token",
    "429": "A quota, a cap on active runs or a login throttle: “error” says which",
    "403": "Your role does not allow this",
    "404": "No such object, or not in one of your projects",
}
_WRITE_ERRORS = {
    "409": "Stale version, or a run/job already in progress",
    "413": "The request body is over the size limit",
    "507": "The server's disk is full: nothing of the request was saved",
}


def schema_errors_hook(result, generator, request, public):
    """drf-spectacular postprocessing: every operation documents the one error shape for the codes
    the exception handler answers with (400/401/403/404, and 409/413/507 on writes)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, methods in result.get("paths", {}).items():
        if not path.startswith("/api/") or path == "/api/schema/":
            continue
        for method, operation in methods.items():
            codes = {**_ERRORS, **(_WRITE_ERRORS if method in ("post", "put", "patch", "delete") else {})}
            responses = operation.setdefault("responses", {})
            for code, description in codes.items():
                responses.setdefault(code, {"description": description, "content": ref})
    return result
