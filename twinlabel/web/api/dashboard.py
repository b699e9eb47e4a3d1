"""The dashboard's data and the embedding map's points (docs/dashboard.md)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotator.access import ADMIN_ONLY, project_for
from twinlabel.web import dashboard
from twinlabel.web.api.errors import BadRequest


@extend_schema(responses={200: OpenApiTypes.OBJECT})
@api_view(["GET"])
def project_dashboard(request: Request, project_id: int) -> Response:
    """Everything the dashboard charts show but the embedding map; see docs/dashboard.md (admin)."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    return Response(dashboard.project_dashboard(project_id=project.id))


@extend_schema(
    parameters=[
        OpenApiParameter("after", int),
        OpenApiParameter("limit", int),
        OpenApiParameter("projection", enum=["pca", "umap"], description="UMAP where the worker computed it"),
    ],
    responses={200: OpenApiTypes.OBJECT},
)
@api_view(["GET"])
def embedding_map(request: Request, project_id: int) -> Response:
    """GET ?after=<image id>&limit=<n>: a page of the embedding map (at most 20,000 points in all; admin)."""
    project, _ = project_for(user=request.user, project_id=project_id, roles=ADMIN_ONLY)
    after, limit = request.query_params.get("after"), request.query_params.get("limit", "5000")
    if (after is not None and not after.isdigit()) or not limit.isdigit() or not 1 <= int(limit) <= 10_000:
        raise BadRequest("“after” must be an image id and “limit” a number from 1 to 10000.")
    projection = request.query_params.get("projection", "pca")
    if projection not in ("pca", "umap"):
        raise BadRequest("“projection” must be “pca” or “umap”.")
    return Response(
        dashboard.embedding_points(
            project_id=project.id, after=int(after) if after else None, limit=int(limit), projection=projection
        )
    )
