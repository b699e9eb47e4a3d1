"""Curation with the embeddings (docs/api.md): more like this, near-duplicate groups, and a tag set
on a selection of images at once (the embedding map's lasso), undoable as one step."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ANNOTATE_ROLES, project_for
from annotator.models import ImageStatus, LabelClass
from annotator.services.bulk_tags import BULK_MAX_IMAGES, tags_bulk_set, tags_bulk_undo
from labeling import curation
from labeling.bulk_decisions import suggestions_bulk_decide, suggestions_bulk_undo
from labeling.models import Decision
from twinlabel.web import compose
from twinlabel.web.api import common
from twinlabel.web.api.errors import BadRequest
from twinlabel.web.api.images import ImageSerializer, image_dict
from twinlabel.web.links import url_template

SIMILAR_MAX = 200


class SimilarImageSerializer(ImageSerializer):
    similarity = serializers.FloatField()  # cosine similarity of the embeddings, 1 = the same direction


class SimilarSerializer(serializers.Serializer):
    run = serializers.IntegerField(allow_null=True)  # the pretraining whose embeddings were compared
    note = serializers.CharField(allow_null=True)  # why there are no results, when there are none to have
    results = SimilarImageSerializer(many=True)


@extend_schema(
    parameters=[
        OpenApiParameter("k", int, description=f"How many (default 20, at most {SIMILAR_MAX})"),
        OpenApiParameter("status", enum=ImageStatus.values),
        OpenApiParameter("label", int, description="Only images a person gave this label (box or tag)"),
    ],
    responses=SimilarSerializer,
)
@api_view(["GET"])
def image_similar(request: Request, image_id: int) -> Response:
    """More like this: the images nearest this one by cosine similarity of the current backbone's
    embeddings, most similar first (exact search)."""
    image = common.image_for(request, image_id, write=False)
    k = common.optional_int(request, "k")
    k = 20 if k is None else k
    if not 1 <= k <= SIMILAR_MAX:
        raise BadRequest(f"“k” must be between 1 and {SIMILAR_MAX}.")
    status = request.query_params.get("status") or None
    if status and status not in ImageStatus.values:
        raise BadRequest(f"Unknown status “{status}”; use one of {', '.join(ImageStatus.values)}.")
    found = compose.similar_images(
        project_id=image.project_id,
        image_id=image.id,
        k=k,
        status=status,
        human_label=common.optional_int(request, "label"),
    )
    urls = (url_template("image_file", image_id="{id}"), url_template("image_thumbnail", image_id="{id}"))
    results = [{**image_dict(row, urls), "similarity": row["similarity"]} for row in found["results"]]
    return Response({"run": found["run"], "note": found["note"], "results": results})


class BulkTagsInSerializer(serializers.Serializer):
    images = serializers.ListField(child=serializers.IntegerField(), required=False)
    label = serializers.IntegerField(required=False)
    action = serializers.ChoiceField(choices=["add", "remove"], required=False)
    # {image id: the version you saw}; an image edited since is reported in "conflicts", not written
    versions = serializers.DictField(child=serializers.IntegerField(), required=False)
    undo = serializers.CharField(required=False)  # the "undo" of an earlier answer: take that write back


class ConflictSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()  # the image's version now


class BulkTagsSerializer(serializers.Serializer):
    changed = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    conflicts = ConflictSerializer(many=True)  # each a 409: edited since you saw it, left as it is
    missing = serializers.ListField(child=serializers.IntegerField())
    still_present = serializers.ListField(child=serializers.IntegerField())  # a box of the label remains
    no_suggestion = serializers.ListField(child=serializers.IntegerField())  # bulk-suggestions/: none of the label
    versions = serializers.DictField(child=serializers.IntegerField())  # {image id: version now} of those changed
    undo = serializers.CharField(allow_null=True)


@extend_schema(request=BulkTagsInSerializer, responses={200: BulkTagsSerializer, 409: BulkTagsSerializer})
@api_view(["POST"])
def project_bulk_tags(request: Request, project_id: int) -> Response:
    """Add or remove one tag on many images (source "human_bulk"), or undo such a write. 200 with what
    changed and a conflict per image edited since the version you sent; 409 when every image was."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ANNOTATE_ROLES)
    data = common.body(request)
    if data.get("undo") is not None:
        if not isinstance(data["undo"], str):
            raise BadRequest("“undo” must be the token an earlier answer gave.")
        report = tags_bulk_undo(project=project, user=request.user, token=data["undo"])
    else:
        report = _bulk_set(request, project, data)
    status = 409 if report.conflicts and not report.changed and not report.unchanged else 200
    return Response(report.as_dict(), status=status)


def _bulk_set(request: Request, project, data: dict):
    if data.get("action") not in ("add", "remove"):
        raise BadRequest("“action” must be “add” or “remove”.")
    images, label, versions = _selection(project, data)
    return tags_bulk_set(
        project=project,
        user=request.user,
        label=label,
        image_ids=images,
        present=data["action"] == "add",
        versions=versions,
    )


def _selection(project, data: dict) -> tuple[list[int], LabelClass, dict[int, int]]:
    """A bulk write's images, label and the versions the caller saw, checked."""
    images = common.id_list(data.get("images"), "images", limit=BULK_MAX_IMAGES)
    if not images:
        raise BadRequest("Select one or more images (“images”: a list of image ids).")
    label_id = common.int_field(data.get("label"), "label")
    label = project.labels.filter(pk=label_id).first()
    if label is None:
        raise BadRequest(f"The project has no label {label_id}.")
    raw = data.get("versions") or {}
    if not isinstance(raw, dict) or not all(str(k).isdigit() for k in raw):
        raise BadRequest("“versions” must map image ids to the versions you saw.")
    versions = {int(k): common.int_field(v, "versions") for k, v in raw.items()}
    return images, label, versions


class BulkSuggestionsInSerializer(serializers.Serializer):
    images = serializers.ListField(child=serializers.IntegerField(), required=False)
    label = serializers.IntegerField(required=False)
    decision = serializers.ChoiceField(choices=["accept", "reject"], required=False)
    versions = serializers.DictField(child=serializers.IntegerField(), required=False)
    undo = serializers.CharField(required=False)


@extend_schema(request=BulkSuggestionsInSerializer, responses={200: BulkTagsSerializer, 409: BulkTagsSerializer})
@api_view(["POST"])
def project_bulk_suggestions(request: Request, project_id: int) -> Response:
    """Accept or reject one label's current suggestions on many images (an accepted one becomes a tag
    with source "model"; a tag a person set is kept), or undo such a write. Conflicts as bulk-tags/."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ANNOTATE_ROLES)
    data = common.body(request)
    if data.get("undo") is not None:
        if not isinstance(data["undo"], str):
            raise BadRequest("“undo” must be the token an earlier answer gave.")
        report = suggestions_bulk_undo(project=project, user=request.user, token=data["undo"])
    else:
        if data.get("decision") not in ("accept", "reject"):
            raise BadRequest("“decision” must be “accept” or “reject”.")
        images, label, versions = _selection(project, data)
        decision = Decision.ACCEPTED if data["decision"] == "accept" else Decision.REJECTED
        report = suggestions_bulk_decide(
            project=project, user=request.user, label=label, image_ids=images, decision=decision, versions=versions
        )
    status = 409 if report.conflicts and not report.changed and not report.unchanged else 200
    return Response(report.as_dict(), status=status)


class DuplicateGroupSerializer(serializers.Serializer):
    group = serializers.IntegerField()  # the group's smallest image id
    images = serializers.ListField(child=serializers.IntegerField())


class DuplicateGroupPageSerializer(serializers.Serializer):
    groups = DuplicateGroupSerializer(many=True)
    next_after = serializers.IntegerField(allow_null=True)  # pass as ?after= for the next page


@extend_schema(
    parameters=[OpenApiParameter("after", int), OpenApiParameter("limit", int, description="Groups (default 50)")],
    responses=DuplicateGroupPageSerializer,
)
@api_view(["GET"])
def project_duplicates(request: Request, project_id: int) -> Response:
    """Near-duplicate groups of the current backbone's embeddings (cosine above the threshold, closed
    transitively), by group; tag a whole group with bulk-tags/."""
    project, _ = project_for(user=request.user, project_id=project_id)
    limit = common.optional_int(request, "limit") or 50
    page = curation.duplicate_groups_page(
        project_id=project.id, after=common.optional_int(request, "after"), limit=min(limit, 500)
    )
    return Response(page)
