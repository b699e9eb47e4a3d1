"""/api/docs/swagger/ (Swagger UI) and /api/docs/redoc/ in Chromium: they load from our own server only (the
sidecar wheel's files, no CDN, no fonts, no validator badge), log no console error, and Swagger's
"try it out" works with the session."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.browser.session import log_in
from tests.factories import make_project, make_user

LOCAL = {"127.0.0.1", "localhost"}


def _requests(page) -> list[str]:
    """Every request the page sent: those that got an answer or failed on the way, but not those
    Chromium refused to send (failure "csp": the Content-Security-Policy blocked them). This machine
    has no route out, so "got no answer" alone would prove nothing."""
    urls: list[str] = []
    page.on("requestfinished", lambda r: urls.append(r.url))
    page.on("requestfailed", lambda r: None if r.failure == "csp" else urls.append(r.url))
    return urls


def _left_the_machine(urls: list[str]) -> list[str]:
    return [
        u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).hostname not in LOCAL
    ]


def test_swagger_ui_loads_offline_and_tries_a_call_with_the_session(page, server):
    owner = make_user("owner")
    make_project(owner=owner, name="Docs project")
    urls = _requests(page)
    log_in(page, server, "owner")
    page.goto(f"{server}/api/docs/swagger/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".opblock-summary-path", has_text="/api/projects/{project_id}/predictions/").count() >= 1
    # Try it out: GET /api/projects/ with the session cookie.
    block = page.locator("#operations-projects-projects_list")
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for(timeout=15_000)
    assert status.inner_text().strip().startswith("200")
    assert "Docs project" in block.locator(".live-responses-table .microlight").first.inner_text()
    assert page.console_errors == []
    assert _left_the_machine(urls) == []


def test_redoc_loads_offline(page, server):
    make_user("owner")
    urls = _requests(page)
    log_in(page, server, "owner")
    page.goto(f"{server}/api/docs/redoc/")
    page.wait_for_selector("text=/api/projects/{project_id}/webhooks/", timeout=30_000)
    # ReDoc's bundle always draws Redocly's logo from their CDN; our Content-Security-Policy refuses it
    # (no request leaves), which Chromium logs. Any other console error fails.
    others = [
        e for e in page.console_errors if not ("cdn.redoc.ly/redoc/logo-mini.svg" in e and "Content Security" in e)
    ]
    assert others == [], others
    assert _left_the_machine(urls) == []
