"""The Content-Security-Policy header, on every response. The pages load their scripts and styles
from our own origin only (ES modules, plotly.js served as a static file), so ``script-src 'self'``
holds and an injected <script> or inline handler does not run. Inline style attributes stay
allowed (label colour swatches, plotly's generated styles): they cannot run code."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def content_security_policy() -> str:
    images = " ".join(["'self'", "data:", "blob:", *settings.CSP_EXTRA_IMG_SRC])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {images}; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
