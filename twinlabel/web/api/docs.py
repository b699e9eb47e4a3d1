"""The API's docs, served offline (no CDN, no web fonts), both from the drf-spectacular-sidecar
wheel's static files:

- /api/docs/: Swagger UI, to read every endpoint and try calls with the session (drf-spectacular's
  script adds the CSRF token) or a token ("Authorize": ``Token <key>``). Its script is a separate
  file (the split view), so the Content-Security-Policy's ``script-src 'self'`` holds. Our template
  (web/swagger_ui.html) adds a language, a header of links, colour overrides (web/api-docs.css) and
  names for the few controls Swagger UI draws without one (web/swagger-a11y.js); with deepLinking off
  (settings) no link sits inside a button, so it passes the axe audit like every other page.
  /api/docs/swagger/, its old address, redirects here.
- /api/docs/redoc/: ReDoc, its bundle served with Redocly's CDN logo replaced by an inline image
  (``api_redoc_bundle``), so it loads nothing from elsewhere and the CSP logs no refusal.
"""

from __future__ import annotations

import functools
from pathlib import Path

import drf_spectacular_sidecar
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

REDOC_BUNDLE = (
    Path(drf_spectacular_sidecar.__file__).parent / "static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
)
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# An empty SVG, inline: the attribution link keeps its text, and no request leaves.
INLINE_LOGO = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"

api_docs = login_required(
    SpectacularSwaggerSplitView.as_view(
        url_name="api_schema", title="Twinlabel API", template_name="web/swagger_ui.html"
    )
)


api_redoc = login_required(
    SpectacularRedocView.as_view(url_name="api_schema", title="Twinlabel API", template_name="web/redoc.html")
)


@login_required
def api_swagger(request: HttpRequest) -> HttpResponse:
    return redirect("api_docs", permanent=False)


@functools.cache
def _redoc_bundle() -> bytes:
    source = REDOC_BUNDLE.read_text(encoding="utf-8")
    if REDOC_LOGO not in source:  # a new sidecar version: say so rather than serve a bundle that leaks
        raise RuntimeError(f"{REDOC_BUNDLE} no longer names {REDOC_LOGO}; update twinlabel/web/api/docs.py")
    return source.replace(REDOC_LOGO, INLINE_LOGO).encode()


@require_GET
@login_required
def api_redoc_bundle(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_redoc_bundle(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "private, max-age=86400"
    return response
