"""A readable page of the OpenAPI schema, served offline (no CDN): every path, its methods,
parameters and description, straight from the schema at /api/schema/. Each GET endpoint is also
browsable in DRF's own HTML renderer."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


@login_required
def api_docs(request: HttpRequest) -> HttpResponse:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    endpoints = []
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                endpoints.append(
                    {
                        "method": method.upper(),
                        "path": path,
                        "description": operation.get("description", ""),
                        "parameters": [
                            (p["name"], p["in"], p.get("description", "")) for p in operation.get("parameters", [])
                        ],
                        "body": ", ".join(operation.get("requestBody", {}).get("content", {})),
                    }
                )
    return render(request, "web/api_docs.html", {"info": schema["info"], "endpoints": endpoints})
