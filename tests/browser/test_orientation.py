"""A camera JPEG is stored as uploaded, EXIF orientation included (annotator.imaging); Chromium
must show it turned everywhere an annotator sees it, in the frame the server's width and height
(and so every box) are in."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotator.services.images import images_import
from annotator.sources import ImageSource
from tests.factories import image_bytes, make_project, make_user

from tests.browser.session import log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# Does the pixel at (x, y) of this bitmap or image look like the black marker (stored top-left)?
_MARKER_AT = """([source, points]) => {
    const canvas = new OffscreenCanvas(source.width, source.height);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(source, 0, 0);
    return points.map(([x, y]) => ctx.getImageData(x, y, 1, 1).data.slice(0, 3).reduce((a, b) => a + b) < 120);
}"""


def test_an_exif_rotated_jpeg_is_shown_turned_on_the_annotate_and_review_pages(server, page):
    owner = make_user("owner")
    project = make_project(owner=owner, labels=("cat",), name="Photos")
    data = image_bytes(120, 80, fmt="JPEG", orientation=6)  # stored 120 x 80, shown 80 x 120
    [item] = images_import(project=project, sources=[ImageSource("phone.jpg", lambda: data)]).imported
    log_in(page, server, "owner")
    page.goto(f"{server}/projects/{project.id}/annotate/?image={item.image_id}")
    page.wait_for_selector("#annotate-app.ready")
    size = page.evaluate("[twinlabel.store.image.width, twinlabel.store.image.height]")
    bitmap = page.evaluate_handle("twinlabel.view.bitmap")
    assert size == [80, 120]
    assert page.evaluate("(b) => [b.width, b.height]", bitmap) == size  # the decoded image is turned
    # The marker, stored at the top-left, is at the top-right of what the annotator sees.
    corners = [[2, 2], [77, 2], [2, 117], [77, 117]]
    assert page.evaluate(_MARKER_AT, [bitmap, corners]) == [False, True, False, False]

    # Review and audit pages show the stored file in an <img>: turned as well.
    image = page.evaluate_handle(
        """async (url) => { const img = new Image(); img.src = url; await img.decode(); return img; }""",
        server + reverse("image_file", args=[item.image_id]),
    )
    assert page.evaluate("(i) => [i.naturalWidth, i.naturalHeight]", image) == size
    assert page.evaluate(_MARKER_AT, [image, corners]) == [False, True, False, False]
    assert page.console_errors == []
