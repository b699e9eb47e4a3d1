"""Projects, labels, images and annotations (docs/api.md). Thin: check access, validate, call one
service or selector, answer."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotator import selectors
from annotator.orders import LIST_ORDERS
from annotator.services import reviews
from annotator.services.annotations import annotation_save
from annotator.services.images import images_import, import_limits
from annotator.services.labels import label_create
from annotator.services.projects import project_create
from annotator.services import annotations
from annotator.services import queue
from twinlabel.web import compose
from annotator.access import ADMIN_ONLY, ANNOTATE_ROLES, REVIEW_ROLES, project_for
from annotator.models import ImageStatus, LabelClass, Project
from twinlabel.web.api import common
from twinlabel.web.api.errors import BadRequest, TooLarge
from twinlabel.web.api.serializers import (AnnotationsInSerializer, AnnotationStateSerializer, ImagePageSerializer,
                                        LabelListSerializer, LabelOutSerializer, LabelSerializer,
                                        ProjectCreatedSerializer, ProjectDeletedSerializer, ProjectDetailSerializer, ProjectListSerializer,
                                        ProjectSerializer, QueueNextSerializer, UploadSerializer, VersionSerializer)
from annotator.sources import ImageSource, Rejection, sources_from_zip


def _project(project: Project) -> dict:
    return {"id": project.id, "name": project.name, "description": project.description,
            "created_at": project.created_at.isoformat()}


def _label(label: LabelClass) -> dict:
    return {"id": label.id, "name": label.name, "color": label.color, "hotkey": label.hotkey, "order": label.order,
            "attributes": label.attributes}


@extend_schema(methods=["GET"], operation_id="projects_list", responses=ProjectListSerializer)
@extend_schema(methods=["POST"], request=ProjectSerializer, responses={201: ProjectCreatedSerializer})
@api_view(["GET", "POST"])
def projects(request: Request) -> Response:
    """GET: the projects you are a member of. POST {name, description, labels: [names]}: a new
    project with its labels; you become its admin."""
    if request.method == "GET":
        return Response({"results": [_project(p) for p in selectors.projects_for_user(user=request.user)]})
    form = ProjectSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    project = project_create(user=request.user, **form.validated_data)
    return Response({**_project(project), "labels": [_label(label) for label in project.labels.all()]}, status=201)


@extend_schema(methods=["GET"], responses=ProjectDetailSerializer)
@extend_schema(methods=["DELETE"], parameters=[OpenApiParameter("confirm", str, required=True,
                                                                description="The project's name")],
               responses={200: ProjectDeletedSerializer, 400: ProjectDeletedSerializer})
@api_view(["GET", "DELETE"])
def project_detail(request: Request, project_id: int) -> Response:
    """GET: the project. DELETE ?confirm=<its name> (admin): delete it with every row and file; without
    the name, 400 with the counts of what it would delete."""
    if request.method == "DELETE":
        return _project_delete(request, project_id)
    project, role = project_for(user=request.user, project_id=project_id)
    return Response({**_project(project), "role": role, "labels": [_label(label) for label in project.labels.all()],
                     "counts": selectors.project_status_counts(project_id=project.id)})


def _project_delete(request: Request, project_id: int) -> Response:
    from annotator.services import deletion

    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    if request.query_params.get("confirm", "").strip() != project.name:
        counts = deletion.project_delete_counts(project=project)
        return Response({"error": f"This deletes {deletion.project_delete_summary(counts)}. To confirm, repeat "
                                  "the request with ?confirm=<the project's name>.", "deleted": counts}, status=400)
    return Response({"deleted": deletion.project_delete(project=project)})


@extend_schema(methods=["GET"], responses=LabelListSerializer)
@extend_schema(methods=["POST"], request=LabelSerializer, responses={201: LabelOutSerializer})
@api_view(["GET", "POST"])
def project_labels(request: Request, project_id: int) -> Response:
    """GET: the project's labels. POST {name, color?, hotkey?, attributes?} (admin): a new label."""
    if request.method == "GET":
        project, _ = project_for(user=request.user, project_id=project_id)
        return Response({"results": [_label(label) for label in project.labels.all()]})
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    form = LabelSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    hotkey = data["hotkey"].strip().lower() if data["hotkey"] else None
    label = label_create(project=project, name=data["name"], color=data["color"], hotkey=hotkey,
                                  attributes=data["attributes"])
    return Response(_label(label), status=201)


def _image(row: dict) -> dict:
    image_id = row["id"]
    return {"id": image_id, "name": row["original_name"], "width": row["width"], "height": row["height"],
            "status": row["status"], "version": row["version"], "file": f"/images/{image_id}/file",
            "thumbnail": f"/images/{image_id}/thumb", **({"uncertainty": row["score"]} if "score" in row else {})}


@extend_schema(
    parameters=[OpenApiParameter("status", enum=ImageStatus.values),
                OpenApiParameter("label", int, description="Images a person gave this label (box or tag)"),
                OpenApiParameter("suggested", int, description="Images the current model suggests this label for"),
                OpenApiParameter("order", enum=list(LIST_ORDERS),
                                 description="id (default) or uncertain: the model's least certain first"),
                OpenApiParameter("name", str, description="Images uploaded under exactly this file name"),
                OpenApiParameter("cursor", str), OpenApiParameter("limit", int)],
    request={"multipart/form-data": UploadSerializer}, responses=ImagePageSerializer)
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser, FormParser, JSONParser])
def project_images(request: Request, project_id: int) -> Response:
    """GET: a page of images (cursor pagination; follow ``next``). POST multipart ``files`` (admin):
    upload images; the answer lists what was imported, what was a duplicate and what was refused."""
    if request.method == "POST":
        return _upload(request, project_id)
    project, _ = project_for(user=request.user, project_id=project_id)
    status = request.query_params.get("status") or None
    if status and status not in ImageStatus.values:
        raise BadRequest(f"Unknown status “{status}”; use one of {', '.join(ImageStatus.values)}.")
    order = request.query_params.get("order") or "id"
    if order not in LIST_ORDERS:
        raise BadRequest(f"Unknown order “{order}”; use one of {', '.join(LIST_ORDERS)}.")
    limit = common.optional_int(request, "limit") or 100
    page = compose.image_list(
        project_id=project.id, status=status, human_label=common.optional_int(request, "label"),
        suggested_label=common.optional_int(request, "suggested"), order=order, limit=min(limit, 1000),
        name=request.query_params.get("name") or None,
        after=common.cursor_decode(request.query_params.get("cursor"), 2 if order == "uncertain" else 1))
    return Response({"next": common.next_url(request, page.next_key), "results": [_image(r) for r in page.images]})


def _upload(request: Request, project_id: int) -> Response:
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > settings.UPLOAD_MAX_BYTES_PER_REQUEST:  # before parsing anything
        raise TooLarge(f"The upload is {int(length) / 1e6:,.0f} MB; one request may carry at most "
                       f"{settings.UPLOAD_MAX_BYTES_PER_REQUEST / 1e6:,.0f} MB. Send the files in smaller batches.")
    files = request.FILES.getlist("files")
    if not files:
        raise BadRequest("Choose one or more image files to upload (multipart field “files”).")
    report = images_import(project=project, sources=_upload_sources(files))
    return Response(report.as_dict(), status=200 if report.imported or report.duplicates else 400)


def _upload_sources(files) -> Iterator[ImageSource | Rejection]:
    """Images, and the images inside zip files, each checked against the size limits first."""
    limit = import_limits().max_bytes
    zip_limit = settings.ZIP_MAX_TOTAL_BYTES
    for f in files:
        if f.name.lower().endswith(".zip"):
            if f.size > zip_limit:
                yield Rejection(f.name, f"the zip is {f.size / 1e6:.0f} MB; the limit is {zip_limit / 1e6:.0f} MB")
            else:
                yield from sources_from_zip(f, name=f.name, max_bytes=limit, max_total=zip_limit)
        elif f.size > limit:
            yield Rejection(f.name, f"the file is {f.size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB")
        else:
            yield ImageSource(f.name, f.read)


@extend_schema(request=AnnotationsInSerializer, responses=AnnotationStateSerializer)
@api_view(["GET", "PUT"])
def image_annotations(request: Request, image_id: int) -> Response:
    """GET: the image's boxes, tags and suggestions. PUT {version, boxes, tags}: replace them
    (409 with the current state when ``version`` is stale)."""
    image = common.image_for(request, image_id, write=request.method == "PUT")
    if request.method == "PUT":
        data = common.body(request)
        tags = data.get("tags", [])
        if not isinstance(tags, list):
            raise BadRequest("“tags” must be a list of label ids.")
        annotation_save(image=image, user=request.user,
                                    version=common.int_field(data.get("version"), "version"),
                                    boxes=common.boxes_field(data.get("boxes", [])),
                                    tag_label_ids=[common.int_field(t, "tags") for t in tags])
    return Response(compose.annotation_state(image=image))  # the service left image as written


def _finish(request: Request, image_id: int, service) -> Response:
    image = common.image_for(request, image_id, write=True)
    service(image=image, user=request.user, version=common.int_field(common.body(request).get("version"), "version"))
    return Response(compose.annotation_state(image=image))  # the service left image as written


@extend_schema(request=VersionSerializer, responses=AnnotationStateSerializer)
@api_view(["POST"])
def image_submit(request: Request, image_id: int) -> Response:
    """Mark the image labeled: every label it does not have becomes a known negative."""
    return _finish(request, image_id, annotations.image_submit)


@extend_schema(request=VersionSerializer, responses=AnnotationStateSerializer)
@api_view(["POST"])
def image_skip(request: Request, image_id: int) -> Response:
    return _finish(request, image_id, annotations.image_skip)


@extend_schema(request=None, responses=QueueNextSerializer)
@api_view(["POST"])
def queue_next(request: Request, project_id: int) -> Response:
    """POST {order, exclude, release}: the next image nobody else holds, now held for you."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ANNOTATE_ROLES)
    data = common.body(request)
    image = queue.queue_next(project=project, user=request.user, order=str(data.get("order", "sequential")),
                                   exclude=common.id_list(data.get("exclude", []), "exclude"),
                                   release=common.id_list(data.get("release", []), "release"))
    return Response({"image": compose.annotation_state(image=image) if image else None})


@extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
@api_view(["POST"])
def queue_release(request: Request, project_id: int) -> Response:
    """POST {images: [ids]} (JSON), or a form with images=1,2 and csrfmiddlewaretoken (what
    navigator.sendBeacon sends when the annotate page closes): let go of images held for you."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ANNOTATE_ROLES)
    raw = common.body(request).get("images", [])
    if isinstance(raw, str):  # the form's "1,2,3"
        if not all(part.strip().isdigit() for part in raw.split(",") if part.strip()):
            raise BadRequest("“images” must be image ids separated by commas.")
        raw = [int(part) for part in raw.split(",") if part.strip()]
    released = queue.queue_release(project=project, user=request.user,
                                         image_ids=common.id_list(raw, "images"))
    return Response({"released": released})


@extend_schema(request=None, responses=AnnotationStateSerializer)
@api_view(["POST"])
def image_review(request: Request, image_id: int) -> Response:
    """{"version": n, "decision": "accept", "boxes"?: [...]} (with boxes: the reviewer's fixes, saved
    with the verdict), {"version": n, "decision": "reject", "comment": "..."}, or {"decision": "skip"}
    (let go of it for now) (reviewers and admins; 409 when the image changed since it was opened)."""
    image = common.image_for(request, image_id, write=True, roles=REVIEW_ROLES)
    data = common.body(request)
    decision = data.get("decision")
    if decision == "skip":
        reviews.review_skip(image=image, user=request.user)
        return Response(compose.annotation_state(image=image))
    version = common.int_field(data.get("version"), "version")
    if decision == "accept":
        boxes = common.boxes_field(data["boxes"]) if data.get("boxes") is not None else None
        reviews.review_accept(image=image, user=request.user, version=version, boxes=boxes)
    elif decision == "reject":
        comment = data.get("comment", "")
        if not isinstance(comment, str):
            raise BadRequest("“comment” must be text.")
        reviews.review_reject(image=image, user=request.user, version=version, comment=comment)
    else:
        raise BadRequest("“decision” must be “accept” or “reject” (or “skip” to pass on the image for now).")
    image.refresh_from_db()
    return Response(compose.annotation_state(image=image))
