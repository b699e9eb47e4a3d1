"""JSON endpoints of the annotate page (docs/annotate-api.md). Thin: parse, check access, call one
service, answer with the image's state; user errors are 4xx with a message that says what to fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods, require_POST

from annotator import annotations, reviews, selectors
from annotator.access import ANNOTATE_ROLES, REVIEW_ROLES, project_for
from annotator.models import Image
from annotator.services import BoxIn


class BadRequest(Exception):
    pass


class TooLarge(Exception):
    pass


def json_endpoint(view: Callable) -> Callable:
    """Log-in required; user errors, missing objects and stale versions become JSON answers."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> JsonResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"error": "Log in first."}, status=401)
        try:
            return view(request, *args, **kwargs)
        except (BadRequest, ValidationError) as error:
            message = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            return JsonResponse({"error": message}, status=400)
        except TooLarge as error:
            return JsonResponse({"error": str(error)}, status=413)
        except annotations.StaleVersion as stale:
            current = selectors.annotation_state(image=Image.objects.get(pk=stale.image_id))
            return JsonResponse({"error": "Someone else changed this image since you opened it.",
                                 "current": current}, status=409)
        except PermissionDenied as error:
            return JsonResponse({"error": str(error) or "Not allowed."}, status=403)
        except Http404 as error:
            return JsonResponse({"error": str(error) or "Not found."}, status=404)

    return wrapped


def parse_body(request: HttpRequest) -> dict:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise TooLarge(f"The request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes; "
                       "send fewer boxes per request.") from None
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"“{what}” must be an integer.")
    return value


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"Box field “{what}” must be a number.")
    return float(value)


def _boxes(raw) -> list[BoxIn]:
    if not isinstance(raw, list):
        raise BadRequest("“boxes” must be a list.")
    boxes = []
    for box in raw:
        if not isinstance(box, dict):
            raise BadRequest("Each box must be an object with label, x, y, w, h.")
        boxes.append(BoxIn(_int(box.get("label"), "label"), *(_number(box.get(k), k) for k in "xywh")))
    return boxes


def image_for(request: HttpRequest, image_id: int, *, write: bool, roles: tuple[str, ...] = ANNOTATE_ROLES) -> Image:
    image = get_object_or_404(Image.objects.select_related("project"), pk=image_id)
    project_for(user=request.user, project_id=image.project_id, roles=roles if write else None)
    return image


@require_http_methods(["GET", "PUT"])
@json_endpoint
def image_annotations(request: HttpRequest, image_id: int) -> JsonResponse:
    image = image_for(request, image_id, write=request.method == "PUT")
    if request.method == "PUT":
        body = parse_body(request)
        tags = body.get("tags", [])
        if not isinstance(tags, list):
            raise BadRequest("“tags” must be a list of label ids.")
        annotations.annotation_save(image=image, user=request.user, version=_int(body.get("version"), "version"),
                                    boxes=_boxes(body.get("boxes", [])), tag_label_ids=[_int(t, "tags") for t in tags])
        image.refresh_from_db()
    return JsonResponse(selectors.annotation_state(image=image))


def _finish(request: HttpRequest, image_id: int, service) -> JsonResponse:
    image = image_for(request, image_id, write=True)
    service(image=image, user=request.user, version=_int(parse_body(request).get("version"), "version"))
    image.refresh_from_db()
    return JsonResponse(selectors.annotation_state(image=image))


@require_POST
@json_endpoint
def image_submit(request: HttpRequest, image_id: int) -> JsonResponse:
    return _finish(request, image_id, annotations.image_submit)


@require_POST
@json_endpoint
def image_skip(request: HttpRequest, image_id: int) -> JsonResponse:
    return _finish(request, image_id, annotations.image_skip)


@require_POST
@json_endpoint
def queue_next(request: HttpRequest, project_id: int) -> JsonResponse:
    project, _ = project_for(user=request.user, project_id=project_id, roles=ANNOTATE_ROLES)
    body = parse_body(request)
    exclude, release = body.get("exclude", []), body.get("release", [])
    for name, value in (("exclude", exclude), ("release", release)):
        if not isinstance(value, list) or len(value) > 1000:
            raise BadRequest(f"“{name}” must be a list of at most 1000 image ids.")
    image = annotations.queue_next(project=project, user=request.user, order=str(body.get("order", "sequential")),
                                   exclude=[_int(i, "exclude") for i in exclude],
                                   release=[_int(i, "release") for i in release])
    return JsonResponse({"image": selectors.annotation_state(image=image) if image else None})



@require_POST
@json_endpoint
def image_review(request: HttpRequest, image_id: int) -> JsonResponse:
    """{"decision": "accept"} or {"decision": "reject", "comment": "..."}, with the version seen."""
    image = image_for(request, image_id, write=True, roles=REVIEW_ROLES)
    body = parse_body(request)
    version = _int(body.get("version"), "version")
    decision = body.get("decision")
    if decision == "accept":
        reviews.review_accept(image=image, user=request.user, version=version)
    elif decision == "reject":
        comment = body.get("comment", "")
        if not isinstance(comment, str):
            raise BadRequest("“comment” must be text.")
        reviews.review_reject(image=image, user=request.user, version=version, comment=comment)
    else:
        raise BadRequest("“decision” must be “accept” or “reject”.")
    image.refresh_from_db()
    return JsonResponse(selectors.annotation_state(image=image))
