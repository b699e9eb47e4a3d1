"""One error shape for the whole API: ``{"error": "<what to fix>"}`` (plus ``fields`` for form
errors, ``current`` on a 409), whatever raised it: DRF, Django, or a service."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from annotator import annotations, selectors
from annotator.access import CSRF_FAILURE_MESSAGE
from annotator.models import Image


class BadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def exception_handler(exc, context):
    if isinstance(exc, annotations.StaleVersion):
        current = selectors.annotation_state(image=Image.objects.get(pk=exc.image_id))
        return Response({"error": "Someone else changed this image since you opened it.", "current": current},
                        status=409)
    if isinstance(exc, ValidationError):
        return Response({"error": " ".join(exc.messages)}, status=400)
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


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        inner = _first_message(value)
        return inner if key == "non_field_errors" else f"“{key}”: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)
