"""Log in, open a project, upload two images through the file input, see their thumbnails."""

import pytest

from annotator.models import Image
from tests.factories import image_bytes, make_project, make_user

from tests.browser.session import log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_it_uploads_two_images_and_shows_their_thumbnails(server, page, tmp_path):
    owner = make_user("owner")
    project = make_project(owner=owner, name="Street scenes")
    files = [tmp_path / "red.png", tmp_path / "blue.jpg"]
    files[0].write_bytes(image_bytes(320, 200, color=(220, 20, 20)))
    files[1].write_bytes(image_bytes(200, 320, color=(20, 20, 220), fmt="JPEG"))

    log_in(page, server, "owner")
    page.click("text=Street scenes")
    page.wait_for_selector("#dropzone[data-ready]")
    page.set_input_files("#file-input", [str(f) for f in files])

    page.wait_for_function("() => document.querySelectorAll('#recent-grid figure.thumb').length === 2")
    assert page.text_content("#upload-summary") == "2 imported, 0 duplicates skipped, 0 rejected"
    # Each thumbnail really loads (the browser decodes it), not just an <img> tag with a broken source.
    page.wait_for_function("() => [...document.querySelectorAll('#recent-grid img')].every(i => i.complete)")
    widths = page.eval_on_selector_all("#recent-grid img", "imgs => imgs.map(i => i.naturalWidth)")
    assert sorted(widths) == [160, 256]  # 256-px thumbnails: 320×200 → 256×160, 200×320 → 160×256
    assert sorted(Image.objects.filter(project=project).values_list("original_name", flat=True)) == [
        "blue.jpg",
        "red.png",
    ]
    # A reload shows them from the server, and the counts agree.
    page.reload()
    assert page.text_content("[data-count=total]") == "2"
    assert page.locator("#recent-grid figure.thumb").count() == 2
    assert page.console_errors == []


def test_it_reports_a_rejected_file_by_name(server, page, tmp_path):
    make_project(owner=make_user("owner"), name="Receipts")
    bad = tmp_path / "notes.png"
    bad.write_text("these are notes, not pixels")
    log_in(page, server, "owner")
    page.click("text=Receipts")
    page.wait_for_selector("#dropzone[data-ready]")
    page.set_input_files("#file-input", [str(bad)])
    page.wait_for_selector("#upload-rejected li")
    assert "notes.png: the file is not an image" in page.text_content("#upload-rejected")
    assert Image.objects.count() == 0


def test_it_uploads_files_dropped_on_the_drop_zone(server, page):
    make_project(owner=make_user("owner"), name="Dropped")
    log_in(page, server, "owner")
    page.click("text=Dropped")
    page.wait_for_selector("#dropzone[data-ready]")
    png = list(image_bytes(40, 30, color=(10, 160, 10)))
    # A real drop event carrying a File, as the browser makes one when a person drops a file.
    page.evaluate(
        """(bytes) => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"}));
        const zone = document.getElementById("dropzone");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: data, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
    }""",
        png,
    )
    page.wait_for_selector("#recent-grid figure.thumb")
    assert page.text_content("#upload-summary") == "1 imported, 0 duplicates skipped, 0 rejected"
    assert list(Image.objects.values_list("original_name", "width", "height")) == [("dropped.png", 40, 30)]


def test_it_says_when_a_file_name_is_taken_by_another_image(server, page, tmp_path):
    project = make_project(owner=make_user("owner"), name="Frames")
    from annotator.services.images import images_import
    from annotator.sources import ImageSource

    images_import(project=project, sources=[ImageSource("000000.png", lambda: image_bytes(40, 30, color=(1, 2, 3)))])
    other = tmp_path / "000000.png"
    other.write_bytes(image_bytes(40, 30, color=(200, 2, 3)))  # another picture, the same name
    log_in(page, server, "owner")
    page.click("text=Frames")
    page.wait_for_selector("#dropzone[data-ready]")
    page.set_input_files("#file-input", [str(other)])
    page.wait_for_selector("#recent-grid figure.thumb >> nth=1")
    summary = page.text_content("#upload-summary")
    assert summary.startswith("1 imported, 0 duplicates skipped, 0 rejected; 1 share a file name"), summary
