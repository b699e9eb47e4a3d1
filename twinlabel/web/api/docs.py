"""The API's docs, served offline (no CDN, no web fonts):

- /api/docs/: a readable page of the OpenAPI schema (every path, its methods, parameters and
  description, straight from /api/schema/), accessible like every other page (axe, in
  tests/browser/test_accessibility.py), linking to the two below;
- /api/docs/swagger/: Swagger UI, to try calls with the session (drf-spectacular's script adds the
  CSRF token) or a token ("Authorize": ``Token <key>``). Its script is a separate file (the split
  view), so the Content-Security-Policy's ``script-src 'self'`` holds;
- /api/docs/redoc/: ReDoc.

Both interactive pages come from the drf-spectacular-sidecar wheel's static files. They are not the
main page because Swagger UI's own markup fails axe (buttons nested in buttons, contrast).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

METHODS = ("get", "post", "put", "patch", "delete")

api_swagger = login_required(SpectacularSwaggerSplitView.as_view(url_name="api_schema", title="Twinlabel API"))
api_redoc = login_required(
    SpectacularRedocView.as_view(url_name="api_schema", title="Twinlabel API", template_name="web/redoc.html")
)


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
