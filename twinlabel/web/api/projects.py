"""Projects: list, create, read, delete (docs/api.md). Thin: check access, validate, call one service or
selector, answer; the shapes beside the views."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator import selectors
from annotator.access import ADMIN_ONLY, project_for
from annotator.models import Project
from annotator.services.projects import project_create
from twinlabel.web.api.labels import LabelOutSerializer, label_dict


class ProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    labels = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        default=list,
        help_text="Label names to create with the project.",
        write_only=True,
    )
    created_at = serializers.DateTimeField(read_only=True)


class ProjectOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ProjectListSerializer(serializers.Serializer):
    results = ProjectOutSerializer(many=True)


class ProjectCreatedSerializer(ProjectOutSerializer):
    labels = LabelOutSerializer(many=True)


class ProjectDetailSerializer(ProjectCreatedSerializer):
    role = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Images by status")


class ProjectDeletedSerializer(serializers.Serializer):
    error = serializers.CharField(required=False, help_text="Without ?confirm: what the deletion would remove")
    deleted = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="images, boxes, tags, labels, reviews, members, runs, suggestions, exports",
    )


def project_dict(project: Project) -> dict:
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "created_at": project.created_at.isoformat(),
    }


@extend_schema(methods=["GET"], operation_id="projects_list", responses=ProjectListSerializer)
@extend_schema(methods=["POST"], request=ProjectSerializer, responses={201: ProjectCreatedSerializer})
@api_view(["GET", "POST"])
def projects(request: Request) -> Response:
    """GET: the projects you are a member of. POST {name, description, labels: [names]}: a new
    project with its labels; you become its admin."""
    if request.method == "GET":
        return Response({"results": [project_dict(p) for p in selectors.projects_for_user(user=request.user)]})
    form = ProjectSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    project = project_create(user=request.user, **form.validated_data)
    return Response(
        {**project_dict(project), "labels": [label_dict(label) for label in project.labels.all()]}, status=201
    )


@extend_schema(methods=["GET"], responses=ProjectDetailSerializer)
@extend_schema(
    methods=["DELETE"],
    parameters=[OpenApiParameter("confirm", str, required=True, description="The project's name")],
    responses={200: ProjectDeletedSerializer, 400: ProjectDeletedSerializer},
)
@api_view(["GET", "DELETE"])
def project_detail(request: Request, project_id: int) -> Response:
    """GET: the project. DELETE ?confirm=<its name> (admin): delete it with every row and file; without
    the name, 400 with the counts of what it would delete."""
    if request.method == "DELETE":
        return _project_delete(request, project_id)
    project, role = project_for(user=request.user, project_id=project_id)
    return Response(
        {
            **project_dict(project),
            "role": role,
            "labels": [label_dict(label) for label in project.labels.all()],
            "counts": selectors.project_status_counts(project_id=project.id),
        }
    )


def _project_delete(request: Request, project_id: int) -> Response:
    from annotator.services import deletion

    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    if request.query_params.get("confirm", "").strip() != project.name:
        counts = deletion.project_delete_counts(project=project)
        return Response(
            {
                "error": f"This deletes {deletion.project_delete_summary(counts)}. To confirm, repeat "
                "the request with ?confirm=<the project's name>.",
                "deleted": counts,
            },
            status=400,
        )
    return Response({"deleted": deletion.project_delete(project=project)})
