"""Real Chromium (Debian's) driven by Playwright, against the real web server (bin/web)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import procs

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = procs.ROOT / "test-artifacts"
# Playwright's sync API runs an event loop in this thread; our ORM calls here set up data before
# the page acts, never concurrently with it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser(need):
    need(Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None, f"Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "the playwright Python package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield browser
        browser.close()


@pytest.fixture
def server(transactional_db, media_root):
    """The web server as deployed, on a free port, over the test database and this test's media."""
    with procs.web(procs.service_env(MEDIA_ROOT=str(media_root))) as (service, url):
        yield url


@pytest.fixture
def axe(need):
    """axe-core, from the axe-playwright-python wheel (requirements-dev.txt)."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        need(False, "the axe-playwright-python package")
    return Axe()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.console_errors = errors
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
