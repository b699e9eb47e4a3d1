"""More like this from the annotate page, in real Chromium against the real server: M opens the
image grid of the nearest images (by the embeddings) in a new tab, most similar first, with scores."""

from __future__ import annotations

import numpy as np
import pytest

from tests import procs
from tests.browser.test_annotate import _open
from tests.factories import add_images, embeddings, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def embedding_server(transactional_db, media_root, settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    with procs.web(procs.service_env(MEDIA_ROOT=str(media_root), MODEL_DIR=str(settings.MODEL_DIR))) as (_, url):
        yield url


def test_m_opens_the_images_most_like_this_one(browser, page, embedding_server):
    project = make_project(owner=make_user("owner"), labels=("cat", "dog"), name="Pets")
    ids = add_images(project, 6, size=(120, 90))
    angles = np.deg2rad(np.arange(6) * 20.0)  # image i at i * 20 degrees: 1, 2, 3... from image 0
    embeddings(project, ids, np.stack([np.cos(angles), np.sin(angles), np.zeros(6)], axis=1))
    assert _open(page, embedding_server, project, ids[0]) == ids[0]
    with page.context.expect_page() as opened:
        page.keyboard.press("m")
    grid = opened.value
    grid.wait_for_selector(".thumb .similarity")
    shown = [int(i) for i in grid.locator(".grid .thumb").evaluate_all("els => els.map((e) => e.dataset.imageId)")]
    assert shown == ids[1:]
    assert grid.locator(".thumb .similarity").first.text_content() == "0.939"  # cos 20°, in float16
    assert page.console_errors == []
