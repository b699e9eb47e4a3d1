"""What the API views share: access to an image, request parsing with messages that say what to
fix, and opaque keyset cursors."""

from __future__ import annotations

import base64
import json
import math

from django.conf import settings
from django.http import Http404
from rest_framework.request import Request

from annotator.access import ANNOTATE_ROLES, member_role, project_role, role_lookup
from annotator.compiled import Compiled
from annotator.models import Image
from twinlabel.web.api.errors import BadRequest, TooLarge


def image_for(request: Request, image_id: int, *, write: bool, roles: tuple[str, ...] = ANNOTATE_ROLES) -> Image:
    # One query: the image, its project and the user's role in it (no second fetch).
    if role_lookup(request.user):
        image = _IMAGE_AS_MEMBER.first(image_id=image_id, user_id=request.user.pk)
    else:
        image = _IMAGE_AS_NOBODY.first(image_id=image_id)
    if image is None:
        raise Http404("No such image.")
    project_role(user=request.user, project=image.project, roles=roles if write else None, role=image.member_role)
    return image


def _image_with_role(image_id: int, user_id: int | None = None):
    images = Image.objects.filter(pk=image_id).select_related("project")
    return images.annotate(member_role=member_role(user_id, "project_id"))[:1]


_IMAGE_AS_MEMBER = Compiled(_image_with_role, {"image_id": "int", "user_id": "int"})
_IMAGE_AS_NOBODY = Compiled(_image_with_role, {"image_id": "int"})


def body(request: Request) -> dict:
    # DRF reads the stream itself, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check: check it here.
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise TooLarge(
            f"The request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes; "
            "send fewer boxes per request."
        )
    data = request.data
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    return data


def int_field(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"“{what}” must be an integer.")
    if not -(2**63) <= value < 2**63:  # no column holds it; SQLite's driver would refuse it (a 500)
        raise BadRequest(f"“{what}” is out of range: {value}.")
    return value


def id_list(raw, what: str, limit: int = 1000) -> list[int]:
    if not isinstance(raw, list) or len(raw) > limit:
        raise BadRequest(f"“{what}” must be a list of at most {limit} image ids.")
    return [int_field(i, what) for i in raw]


def optional_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if not value.isdigit():
        raise BadRequest(f"“{name}” must be a whole number.")
    return int(value)


def optional_float(request: Request, name: str) -> float | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise BadRequest(f"“{name}” must be a number.") from None


def cursor_encode(key: tuple | None) -> str | None:
    return None if key is None else base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def cursor_decode(value: str | None, size: int) -> tuple | None:
    if not value:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, TypeError):
        raise BadRequest("The cursor is not one this API gave out.") from None
    if (
        not isinstance(key, list)
        or len(key) != size  # finite: json reads 1e400 as infinity
        or not all(isinstance(k, (int, float)) and not isinstance(k, bool) and math.isfinite(k) for k in key)
    ):
        raise BadRequest("The cursor is not one this API gave out.")
    return tuple(key)


def next_url(request: Request, key: tuple | None) -> str | None:
    if key is None:
        return None
    params = request.query_params.copy()
    params["cursor"] = cursor_encode(key)
    return f"{request.path}?{params.urlencode()}"
