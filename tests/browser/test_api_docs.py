"""/api/docs/ (Swagger UI) and /api/docs/redoc/ in Chromium: they load from our own server only (the
sidecar wheel's files, no CDN, no fonts, no validator badge), log no console error at all, Swagger's
"try it out" works with the session and with a token, and Swagger UI passes the axe audit with its
operations open and its Authorize dialog shown."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from rest_framework.authtoken.models import Token

from tests.browser.session import log_in
from tests.browser.test_accessibility import _audit
from tests.factories import make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LOCAL = {"127.0.0.1", "localhost"}


def _requests(page) -> list[str]:
    """Every request the page sent: those that got an answer or failed on the way, and those Chromium
    refused to send (the Content-Security-Policy's refusals count: a page must not even try)."""
    urls: list[str] = []
    page.on("requestfinished", lambda r: urls.append(r.url))
    page.on("requestfailed", lambda r: urls.append(r.url))
    return urls


def _left_the_machine(urls: list[str]) -> list[str]:
    return [
        u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).hostname not in LOCAL
    ]


def _execute(page, operation: str):
    block = page.locator(f"#operations-{operation}")
    if not block.locator(".opblock-body").count():
        block.locator(".opblock-summary").click()
    if block.get_by_role("button", name="Try it out").count():
        block.get_by_role("button", name="Try it out").click()
    if block.locator(".btn-clear").count():  # the last answer goes first: waiting must see the new one
        block.locator(".btn-clear").click()
        block.locator(".live-responses-table").wait_for(state="detached")
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for(timeout=15_000)
    return status.inner_text().strip(), block.locator(".live-responses-table .microlight").first.inner_text()


def test_swagger_ui_is_the_docs_page_and_tries_calls_with_the_session_and_a_token(page, server):
    owner = make_user("owner")
    make_project(owner=owner, name="Docs project")
    bot = make_user("bot")
    make_project(owner=bot, name="Bot's own")
    token = Token.objects.create(user=bot).key
    urls = _requests(page)
    log_in(page, server, "owner")
    page.goto(f"{server}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".opblock-summary-path", has_text="/api/projects/{project_id}/bucket-imports/").count() >= 1
    # Try it out with the session: GET /api/projects/ as the owner.
    status, body = _execute(page, "projects-projects_list")
    assert status.startswith("200") and "Docs project" in body and "Bot's own" not in body
    # "Authorize" with the bot's token: the same call now answers as the bot (the token goes first).
    page.get_by_role("button", name="Authorize").first.click()
    scheme = page.locator(".modal-ux .auth-container", has=page.locator("code", has_text="tokenAuth"))
    scheme.locator("input").fill(f"Token {token}")
    scheme.get_by_role("button", name="Apply credentials").click()
    page.locator(".modal-ux .close-modal").click()
    status, body = _execute(page, "projects-projects_list")
    assert status.startswith("200") and "Bot's own" in body and "Docs project" not in body
    assert page.console_errors == []
    assert _left_the_machine(urls) == []


def test_swagger_ui_passes_axe_with_operations_open_and_the_authorize_dialog(page, server, axe):
    make_project(owner=make_user("owner"), name="Docs project")
    log_in(page, server, "owner")
    page.goto(f"{server}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    reports = [_audit(axe, page, "swagger")]
    _execute(page, "projects-projects_list")
    create = page.locator("#operations-projects-projects_create")
    create.locator(".opblock-summary").click()
    create.get_by_role("button", name="Try it out").click()
    reports.append(_audit(axe, page, "swagger, operations open, a response"))
    page.get_by_role("button", name="Authorize").first.click()
    page.wait_for_selector(".modal-ux")
    reports.append(_audit(axe, page, "swagger, the Authorize dialog"))
    blocking = {r["page"]: r["blocking"] for r in reports if r["blocking"]}
    assert blocking == {}, json.dumps(blocking, indent=1)
    assert page.console_errors == []


def test_redoc_loads_offline_with_no_console_error(page, server):
    make_user("owner")
    urls = _requests(page)
    log_in(page, server, "owner")
    page.goto(f"{server}/api/docs/redoc/")
    page.wait_for_selector("text=/api/projects/{project_id}/webhooks/", timeout=30_000)
    page.wait_for_selector("text=API docs by Redocly")  # the attribution is drawn, its logo inline
    assert page.console_errors == []
    assert _left_the_machine(urls) == []
