"""The annotate page in real Chromium against the real server: every edit with the mouse and
the keyboard, checked on the page and in what the server stored."""

from __future__ import annotations

import re

import pytest

from annotator.models import Box, Image, ImageStatus, ImageTag, LabelClass
from tests.factories import add_images, add_member, make_project, make_user

from tests.browser.session import log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]

READY = "#annotate-app.ready"


# ---- helpers ---------------------------------------------------------------------------------------


def _project(images=3, size=(400, 300)):
    owner = make_user("owner")
    project = make_project(owner=owner, labels=("cat", "dog"), name="Pets")
    ids = add_images(project, images, size=size)
    return project, ids


def _open(page, url, project, image_id=None, login="owner"):
    if login:
        log_in(page, url, login)
    query = f"?image={image_id}" if image_id else ""
    page.goto(f"{url}/projects/{project.id}/annotate/{query}")
    page.wait_for_selector(READY)
    return page.evaluate("twinlabel.store.image.id")


def _screen(page, x, y):
    """Page coordinates of the image pixel (x, y), as the page's own viewport maps it."""
    return page.evaluate(
        """([x, y]) => {
        const p = twinlabel.view.viewport.toScreen(x, y);
        const r = twinlabel.view.overlay.getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }""",
        [x, y],
    )


def _drag(page, a, b, steps=6):
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=steps)
    page.mouse.up()


def _drag_image(page, a, b):
    _drag(page, _screen(page, *a), _screen(page, *b))


def _click_image(page, x, y):
    page.mouse.click(*_screen(page, x, y))


def _saved(page):
    page.wait_for_selector("#save-status[data-status=saved]")
    page.wait_for_function("() => !twinlabel.session.busy")


def _wait_image(page, image_id):
    """Until the image is open and the move is over (keys pressed during a move are ignored)."""
    page.wait_for_function(f"() => twinlabel.store.image?.id === {image_id} && !twinlabel.session.busy")


def _page_boxes(page):
    return page.evaluate("twinlabel.store.serialize().boxes")


def _db_boxes(image_id):
    return [
        (b.label.name, b.x, b.y, b.w, b.h)
        for b in Box.objects.filter(image_id=image_id).select_related("label").order_by("id")
    ]


def _same(actual, expected, tol=0.5):
    """Boxes as (label, x, y, w, h), equal within ``tol`` image pixels: the mouse moves in whole
    screen pixels, so a drag lands within a fraction of an image pixel of the intended point."""
    assert len(actual) == len(expected), (actual, expected)
    for a, e in zip(actual, expected):
        assert a[0] == e[0] and a[1:] == pytest.approx(e[1:], abs=tol), (actual, expected)


def _named(boxes, labels):
    names = {label.id: label.name for label in labels}
    return [(names[b["label"]], b["x"], b["y"], b["w"], b["h"]) for b in boxes]


def _labels(project):
    return list(LabelClass.objects.filter(project=project))


# ---- boxes -----------------------------------------------------------------------------------------


def test_it_draws_a_box_with_the_active_label_and_saves_it(server, page):
    project, ids = _project()
    image_id = _open(page, server, project)
    assert image_id == ids[0]
    page.keyboard.press("2")  # box class "dog"
    _drag_image(page, (50, 40), (150, 120))
    _saved(page)
    _same(_db_boxes(image_id), [("dog", 50.0, 40.0, 100.0, 80.0)])
    assert page.text_content("#box-list").startswith("dog")
    assert page.text_content("#save-status") == "All changes saved"
    assert Image.objects.get(pk=image_id).version == 2
    assert page.console_errors == []


def test_a_box_started_inside_another_box_is_a_new_box(server, page):
    project, _ = _project()
    image_id = _open(page, server, project)
    _drag_image(page, (20, 20), (300, 250))
    _drag_image(page, (100, 100), (200, 180))  # starts inside the first (and selected) box
    _saved(page)
    _same(_db_boxes(image_id), [("cat", 20.0, 20.0, 280.0, 230.0), ("cat", 100.0, 100.0, 100.0, 80.0)])


def test_it_moves_and_resizes_the_selected_box(server, page):
    project, _ = _project()
    image_id = _open(page, server, project)
    _drag_image(page, (100, 100), (200, 180))
    page.keyboard.press("Escape")
    _click_image(page, 150, 140)  # a click without a drag selects
    assert page.evaluate("twinlabel.store.selected") is not None
    _drag_image(page, (100, 115), (130, 135))  # the outline (away from the handles) moves it
    _drag_image(page, (230, 200), (250, 230))  # the bottom-right handle resizes it
    _saved(page)
    _same(_db_boxes(image_id), [("cat", 130.0, 120.0, 120.0, 110.0)])
    # Alt+drag inside moves any box, selected or not.
    page.keyboard.press("Escape")
    page.keyboard.down("Alt")
    _drag_image(page, (150, 150), (140, 145))
    page.keyboard.up("Alt")
    _saved(page)
    _same(_db_boxes(image_id), [("cat", 120.0, 115.0, 120.0, 110.0)])


def test_it_clips_boxes_to_the_image_and_ignores_slips(server, page):
    project, _ = _project()
    image_id = _open(page, server, project)
    _drag_image(page, (350, 250), (450, 350))  # ends outside the image
    _drag_image(page, (10, 10), (11.5, 11.5))  # smaller than the minimum: a slip, not a box
    _saved(page)
    _same(_db_boxes(image_id), [("cat", 350.0, 250.0, 50.0, 50.0)])
    # Moving keeps a box inside the image.
    _drag_image(page, (350, 262), (400, 262))
    _saved(page)
    _same(_db_boxes(image_id), [("cat", 350.0, 250.0, 50.0, 50.0)])


def test_it_nudges_relabels_and_deletes_the_selected_box(server, page):
    project, _ = _project()
    image_id = _open(page, server, project)
    _drag_image(page, (100, 100), (200, 180))
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("2")  # relabels the selected box as "dog"
    _saved(page)
    _same(_db_boxes(image_id), [("dog", 102.0, 110.0, 100.0, 80.0)])
    page.keyboard.press("Delete")
    _drag_image(page, (10, 10), (50, 50))  # drawn with the now active class, "dog"
    page.keyboard.press("Backspace")
    _saved(page)
    _same(_db_boxes(image_id), [])
    assert page.text_content("#box-count") == "0"


def test_it_undoes_and_redoes_every_edit(server, page):
    project, _ = _project()
    image_id = _open(page, server, project)
    _drag_image(page, (100, 100), (200, 180))
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+1")  # tag "cat"
    page.keyboard.press("Delete")
    _saved(page)
    _same(_db_boxes(image_id), [])
    page.keyboard.press("Control+z")  # the delete
    page.keyboard.press("Control+z")  # the tag
    _saved(page)
    _same(_db_boxes(image_id), [("cat", 99.0, 100.0, 100.0, 80.0)])
    assert not ImageTag.objects.filter(image_id=image_id).exists()
    page.keyboard.press("Control+z")  # the nudge
    page.keyboard.press("Control+z")  # the box
    _saved(page)
    _same(_db_boxes(image_id), [])
    page.keyboard.press("Control+Shift+z")
    page.keyboard.press("Control+y")
    _saved(page)
    _same(_db_boxes(image_id), [("cat", 99.0, 100.0, 100.0, 80.0)])
    page.click("[data-action=undo]")  # the button does what the key does
    _saved(page)
    _same(_db_boxes(image_id), [("cat", 100.0, 100.0, 100.0, 80.0)])


# ---- tags -----------------------------------------------------------------------------------------


def test_shift_hotkeys_toggle_image_tags_and_boxes_imply_labels(server, page):
    project, _ = _project()
    image_id = _open(page, server, project)
    cat, dog = _labels(project)
    page.keyboard.press("Shift+2")
    _saved(page)
    assert list(ImageTag.objects.filter(image_id=image_id).values_list("label_id", flat=True)) == [dog.id]
    assert page.get_attribute(f"#tag-list [data-label='{dog.id}']", "aria-checked") == "true"
    assert page.evaluate("twinlabel.store.activeLabel") == cat.id  # the tag key left the box class alone
    _drag_image(page, (10, 10), (60, 60))  # a "cat" box: cat is now implied, not tagged
    _saved(page)
    cat_tag = page.locator(f"#tag-list [data-label='{cat.id}']")
    assert cat_tag.get_attribute("aria-checked") == "true"
    assert "implied" in cat_tag.get_attribute("class")
    assert "implied by a box" in cat_tag.text_content()
    assert list(ImageTag.objects.filter(image_id=image_id).values_list("label_id", flat=True)) == [dog.id]
    page.keyboard.press("Shift+2")
    _saved(page)
    assert not ImageTag.objects.filter(image_id=image_id).exists()
    # The two kinds of control say which key they answer to.
    assert page.text_content(f"#class-list [data-label='{cat.id}'] kbd") == "1"
    assert page.text_content(f"#tag-list [data-label='{cat.id}'] kbd") == "⇧1"


# ---- flow -----------------------------------------------------------------------------------------


def test_enter_submits_and_opens_the_next_image_and_arrows_go_back(server, page):
    project, ids = _project(images=3)
    first = _open(page, server, project)
    _drag_image(page, (10, 10), (60, 60))
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")  # flushes the pending save, then submits
    page.wait_for_function(
        f"() => twinlabel.store.image && twinlabel.store.image.id !== {first} && !twinlabel.session.busy"
    )
    second = page.evaluate("twinlabel.store.image.id")
    assert second == ids[1]
    assert page.url.endswith(f"?image={second}")
    image = Image.objects.get(pk=first)
    assert image.status == ImageStatus.SUBMITTED
    _same(_db_boxes(first), [("cat", 10.0, 10.0, 50.0, 50.0)])
    page.keyboard.press("s")
    _wait_image(page, ids[2])
    assert Image.objects.get(pk=second).status == ImageStatus.SKIPPED
    page.keyboard.press("ArrowLeft")
    _wait_image(page, second)
    page.keyboard.press("ArrowLeft")
    _wait_image(page, first)
    _same(_named(_page_boxes(page), _labels(project)), [("cat", 10.0, 10.0, 50.0, 50.0)])
    page.keyboard.press("ArrowRight")
    _wait_image(page, second)
    page.click("[data-action=forward]")
    _wait_image(page, ids[2])
    page.keyboard.press("Enter")  # the last one: nothing is left
    page.wait_for_selector("#done:not([hidden])")
    assert Image.objects.get(pk=ids[2]).status == ImageStatus.SUBMITTED
    assert page.console_errors == []


def test_a_reload_shows_exactly_what_was_saved(server, page):
    project, _ = _project()
    image_id = _open(page, server, project)
    _drag_image(page, (12.5, 20.25), (100, 80))
    page.keyboard.press("2")
    _drag_image(page, (150, 100), (390, 290))
    page.keyboard.press("Shift+1")
    _saved(page)
    before = _page_boxes(page)
    page.reload()
    page.wait_for_selector(READY)
    assert page.evaluate("twinlabel.store.image.id") == image_id
    assert _page_boxes(page) == before
    stored = [
        {"label": b.label_id, "x": b.x, "y": b.y, "w": b.w, "h": b.h}
        for b in Box.objects.filter(image_id=image_id).order_by("id")
    ]
    assert stored == before
    assert page.evaluate("twinlabel.store.serialize().tags") == [_labels(project)[0].id]
    assert page.locator("#box-list li").count() == 2


def test_a_box_drawn_at_zoom_2_after_panning_stores_image_pixels(server, page):
    project, _ = _project(images=1, size=(1600, 1200))
    image_id = _open(page, server, project)
    stage = page.locator("#stage").bounding_box()
    # The documented fit: the whole image, centred, as large as fits.
    fit = min(stage["width"] / 1600, stage["height"] / 1200)
    left = stage["x"] + (stage["width"] - 1600 * fit) / 2
    top = stage["y"] + (stage["height"] - 1200 * fit) / 2
    anchor = (stage["x"] + 300, stage["y"] + 250)
    fixed = ((anchor[0] - left) / fit, (anchor[1] - top) / fit)  # the image point under the pointer
    page.mouse.move(*anchor)
    while page.evaluate("twinlabel.view.viewport.scale") < 2:
        page.keyboard.press("+")  # zooms about the pointer through fixed levels
    assert page.evaluate("twinlabel.view.viewport.scale") == 2
    # Pan with Space+drag by (-120, -80) screen pixels.
    page.keyboard.down("Space")
    _drag(page, anchor, (anchor[0] - 120, anchor[1] - 80))
    page.keyboard.up("Space")
    # A screen point s now shows image point fixed + (s - anchor - pan) / 2.
    start, end = (stage["x"] + 200, stage["y"] + 150), (stage["x"] + 420, stage["y"] + 310)

    def image_at(s):
        return (fixed[0] + (s[0] - anchor[0] + 120) / 2, fixed[1] + (s[1] - anchor[1] + 80) / 2)

    _drag(page, start, end)
    _saved(page)
    (x0, y0), (x1, y1) = image_at(start), image_at(end)
    [box] = Box.objects.filter(image_id=image_id)
    assert (box.x, box.y, box.w, box.h) == pytest.approx((x0, y0, x1 - x0, y1 - y0), abs=0.51)
    assert box.w == pytest.approx(110, abs=0.51)  # 220 screen pixels at zoom 2
    # F fits again.
    page.keyboard.press("f")
    assert page.evaluate("twinlabel.view.viewport.scale") == pytest.approx(fit)


def test_the_wheel_zooms_about_the_pointer_and_a_middle_drag_pans(server, page):
    project, _ = _project(images=1, size=(800, 600))
    _open(page, server, project)
    at = [round(v) for v in _screen(page, 200, 150)]  # the mouse moves in whole pixels

    def under_pointer():
        return page.evaluate(
            """([x, y]) => { const r = twinlabel.view.overlay.getBoundingClientRect();
                                             const p = twinlabel.view.viewport.toImage(x - r.left, y - r.top);
                                             return [p.x, p.y]; }""",
            at,
        )

    page.mouse.move(*at)
    scale, fixed = page.evaluate("twinlabel.view.viewport.scale"), under_pointer()
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"() => twinlabel.view.viewport.scale > {scale}")
    assert under_pointer() == pytest.approx(fixed, abs=0.01)
    before = page.evaluate("[twinlabel.view.viewport.ox, twinlabel.view.viewport.oy]")
    page.mouse.down(button="middle")
    page.mouse.move(at[0] + 40, at[1] - 30, steps=4)
    page.mouse.up(button="middle")
    after = page.evaluate("[twinlabel.view.viewport.ox, twinlabel.view.viewport.oy]")
    assert (after[0] - before[0], after[1] - before[1]) == pytest.approx((40, -30), abs=0.01)
    assert Box.objects.count() == 0  # panning drew nothing
    # Tab walks the box list.
    _drag_image(page, (200, 150), (220, 170))
    _drag_image(page, (230, 150), (250, 170))
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    cids = page.evaluate("twinlabel.store.boxes.map(b => b.cid)")
    assert page.evaluate("twinlabel.store.selected") == cids[0]
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("twinlabel.store.selected") == cids[1]
    assert "selected" in page.get_attribute("#box-list li:nth-child(2) button", "class")


def test_a_stale_save_gets_409_and_the_page_offers_their_version(server, page, browser):
    project, ids = _project()
    add_member(project, make_user("other"))
    image_id = _open(page, server, project, image_id=ids[0])
    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    _open(other, server, project, image_id=ids[0], login="other")
    _drag_image(page, (10, 10), (60, 60))
    _saved(page)
    _drag_image(other, (100, 100), (200, 200))  # based on version 1: the server has 2 now
    other.wait_for_selector("#conflict-banner:not([hidden])")
    assert "Someone else changed this image" in other.text_content("#conflict-banner")
    assert other.get_attribute("#save-status", "data-status") == "conflict"
    _same(_db_boxes(image_id), [("cat", 10.0, 10.0, 50.0, 50.0)])  # nothing overwritten
    other.keyboard.press("r")  # load their version
    other.wait_for_selector("#conflict-banner", state="hidden")
    _same(_named(_page_boxes(other), _labels(project)), [("cat", 10.0, 10.0, 50.0, 50.0)])
    # Editing on top of their version saves normally.
    _drag_image(other, (100, 100), (200, 200))
    _saved(other)
    _same(_db_boxes(image_id), [("cat", 10.0, 10.0, 50.0, 50.0), ("cat", 100.0, 100.0, 100.0, 100.0)])
    other.context.close()


def test_edits_survive_a_network_error(server, page):
    project, _ = _project()
    image_id = _open(page, server, project)
    failures = {"left": 4}  # more than the client's quick retries: the saver's own retry must save it

    def flaky(route):
        if route.request.method == "PUT" and failures["left"] > 0:
            failures["left"] -= 1
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(r".*/annotations/$"), flaky)
    _drag_image(page, (10, 10), (60, 60))
    page.wait_for_selector("#save-status[data-status=error]", timeout=10_000)
    assert "Not saved" in page.text_content("#save-status")
    # Leaving now would lose the edit: the page asks first.
    assert page.evaluate("""() => { const e = new Event("beforeunload", {cancelable: true});
                                    window.dispatchEvent(e); return e.defaultPrevented; }""")
    page.wait_for_selector("#save-status[data-status=saved]", timeout=15_000)
    _same(_db_boxes(image_id), [("cat", 10.0, 10.0, 50.0, 50.0)])


def test_an_edit_the_full_database_refuses_is_kept_and_saved_once_there_is_space(server, page):
    """PostgreSQL refuses the save with disk_full (53100, raised by the server itself): the page
    keeps the edit, says why it is not saved, and saves it by itself once the disk has room."""
    from django.db import connection

    from tests.full_disk import FullDisk

    if connection.vendor != "postgresql":
        pytest.skip("the web server's own SQLite connection cannot be filled from here")
    project, _ = _project()
    image_id = _open(page, server, project)
    with FullDisk():
        _drag_image(page, (10, 10), (60, 60))
        page.wait_for_selector("#save-status[data-status=error]", timeout=15_000)
        status = page.text_content("#save-status")
        assert (
            status.startswith("Not saved: The server's disk is full: this change was not saved")
            and "Retrying in" in status
        )
        assert _db_boxes(image_id) == []
    page.wait_for_selector("#save-status[data-status=saved]", timeout=40_000)
    _same(_db_boxes(image_id), [("cat", 10.0, 10.0, 50.0, 50.0)])


def test_the_help_overlay_lists_every_shortcut_and_buttons_show_their_keys(server, page):
    project, _ = _project()
    _open(page, server, project)
    page.keyboard.press("?")
    help_text = page.text_content("#help")
    for key in ["Enter", "Ctrl+Z", "Ctrl+Shift+Z", "Del", "Space+drag", "Alt+drag", "⇧1", "⇧2", "H", "F", "?"]:
        assert key in help_text
    page.keyboard.press("Escape")
    assert page.locator("#help").is_hidden()
    for button in page.locator(".annotate-toolbar button").all():
        assert button.locator("kbd").count() == 1, button.text_content()
    # H hides the boxes (the view keeps them; only the drawing changes).
    page.keyboard.press("h")
    assert page.evaluate("twinlabel.store.hidden") is True
    assert page.text_content("#hide-state") == "Show"
