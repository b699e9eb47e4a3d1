"""Shared fixtures. Services (PostgreSQL, Redis, Chromium) are skipped when missing, unless
``--require-services`` (or REQUIRE_SERVICES=1) turns every such skip into a failure, as CI does."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--require-services",
        action="store_true",
        help="fail instead of skipping when PostgreSQL, Redis or Chromium is not available",
    )


@pytest.fixture(scope="session")
def require_services(request) -> bool:
    return request.config.getoption("--require-services") or os.environ.get("REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def need(require_services):
    """``need(ok, "what is missing")``: skip the test, or fail it when services are required."""

    def check(available: bool, missing: str) -> None:
        if not available:
            if require_services:
                pytest.fail(f"required service not available: {missing}")
            pytest.skip(f"service not available: {missing}")

    return check


# The embedding map's UMAP costs minutes of numba compilation and fitting per pretraining: off in
# the tests (here and in the services they start) but where a test turns it on.
os.environ.setdefault("MAP_UMAP_POINTS", "0")


@pytest.fixture(autouse=True)
def _no_umap(settings):
    settings.MAP_UMAP_POINTS = 0


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The failed-login counts live in the cache (files under var/ in the embedded default): each
    test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def team(db, request):
    """Owner, annotator ("annie"), reviewer ("rev") and outsider ("out") around a project "Pets"
    with labels cat and dog, and no images unless a ``team`` mark asks for them
    (``pytestmark = pytest.mark.team(images=5)``: any of make_team's arguments)."""
    from tests.factories import make_team

    mark = request.node.get_closest_marker("team")
    return make_team(**(mark.kwargs if mark else {}))
