"""images_import: the one import service, with its documented results and nothing left partial."""

import io
import zipfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from annotator.models import Image
from annotator.services import images as image_services
from annotator.services.images import images_import
from annotator.sources import ImageSource
from tests.factories import image_bytes, make_project, make_user

pytestmark = pytest.mark.django_db


def _files(media_root):
    return sorted(p.relative_to(media_root).as_posix() for p in media_root.rglob("*") if p.is_file())


def _bomb() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("L", (12_000, 10_000)).save(buffer, "PNG")  # 120 megapixels, a few KB
    return buffer.getvalue()


@pytest.mark.parametrize("threads", [1, 3])  # one decode at a time (uploads) or a pool (the command)
def test_it_imports_each_kind_and_reports_the_rest(media_root, threads):
    project = make_project()
    good = {
        "a.png": image_bytes(fmt="PNG"),
        "b.jpg": image_bytes(color=(1, 2, 3), fmt="JPEG"),
        "c.webp": image_bytes(color=(9, 9, 9), fmt="WEBP"),
    }
    bad = {"truncated.png": image_bytes(300, 300)[:200], "text.png": b"just text", "bomb.png": _bomb()}
    sources = [ImageSource(n, lambda d=d: d) for n, d in {**good, **bad, "again.png": good["a.png"]}.items()]

    report = images_import(project=project, sources=sources, decode_threads=threads)

    assert [i.name for i in report.imported] == ["a.png", "b.jpg", "c.webp"]
    assert [(d.name, d.image_id) for d in report.duplicates] == [("again.png", report.imported[0].image_id)]
    reasons = {r.name: r.reason for r in report.rejected}
    assert set(reasons) == set(bad)
    assert "truncated" in reasons["truncated.png"] or "damaged" in reasons["truncated.png"]
    assert "not an image" in reasons["text.png"]
    assert "megapixels" in reasons["bomb.png"]
    rows = list(Image.objects.filter(project=project).order_by("id"))
    assert [(r.original_name, r.width, r.height, r.status) for r in rows] == [
        ("a.png", 64, 48, "unlabeled"),
        ("b.jpg", 64, 48, "unlabeled"),
        ("c.webp", 64, 48, "unlabeled"),
    ]
    # Exactly one image file and one thumbnail per row: nothing for the rejected or duplicate files.
    expected = sorted([r.file.name for r in rows] + [r.thumbnail.name for r in rows])
    assert _files(media_root) == expected


def test_it_stores_an_exif_rotated_jpeg_as_uploaded_with_the_size_it_is_shown_at(media_root):
    project = make_project()
    data = image_bytes(100, 60, fmt="JPEG", orientation=6)
    report = images_import(project=project, sources=[ImageSource("rot.jpg", lambda: data)])
    image = Image.objects.get(pk=report.imported[0].image_id)
    assert (image.width, image.height) == (60, 100)  # turned, as the browser shows it
    with image.file.open("rb") as handle:
        assert handle.read() == data  # the original bytes, EXIF orientation included
    with image.thumbnail.open("rb") as handle:
        width, height = PILImage.open(handle).size
    assert width < height  # the thumbnail is upright


def test_a_duplicate_in_another_project_is_imported_there(media_root):
    first = make_project(name="one")
    second = make_project(owner=make_user("other"), name="two")
    data = image_bytes()
    assert len(images_import(project=first, sources=[ImageSource("x.png", lambda: data)]).imported) == 1
    assert len(images_import(project=second, sources=[ImageSource("x.png", lambda: data)]).imported) == 1


@pytest.mark.parametrize("threads", [1, 3])
def test_a_database_failure_leaves_no_files_and_no_rows(media_root, monkeypatch, threads):
    project = make_project()

    def explode(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Image.objects, "bulk_create", explode)
    with pytest.raises(RuntimeError):
        images_import(project=project, sources=[ImageSource("a.png", image_bytes)], decode_threads=threads)
    assert Image.objects.count() == 0
    assert _files(media_root) == []


def test_a_concurrent_import_of_the_same_file_counts_as_a_duplicate(media_root, monkeypatch):
    """Another import commits the same image between our duplicate check and our insert."""
    project = make_project()
    data = image_bytes()
    real_write_files = image_services._write_files
    state = {"raced": False}

    def write_files_after_a_rival(*args):
        # Runs after our duplicate check and before our insert: the window a rival import can hit.
        if not state["raced"]:
            state["raced"] = True
            images_import(project=project, sources=[ImageSource("theirs.png", lambda: data)])
        return real_write_files(*args)

    monkeypatch.setattr(image_services, "_write_files", write_files_after_a_rival)
    report = images_import(project=project, sources=[ImageSource("mine.png", lambda: data)])
    theirs = Image.objects.get(project=project)
    assert theirs.original_name == "theirs.png"
    assert [(d.name, d.image_id) for d in report.duplicates] == [("mine.png", theirs.id)]
    assert _files(media_root) == sorted([theirs.file.name, theirs.thumbnail.name])


def test_the_command_imports_folders_and_zips_and_refuses_escaping_entries(tmp_path, media_root, capsys):
    project = make_project()
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.png").write_bytes(image_bytes(color=(1, 1, 1)))
    (folder / "sub" / "two.jpg").write_bytes(image_bytes(color=(2, 2, 2), fmt="JPEG"))
    (folder / "sub" / "fake.png").write_text("text")
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("three.png", image_bytes(color=(3, 3, 3)))
        z.writestr("../../escape.png", image_bytes(color=(4, 4, 4)))
        z.writestr("dup.png", image_bytes(color=(1, 1, 1)))

    call_command("import_images", str(project.id), str(folder), str(archive), "--no-progress")

    out = capsys.readouterr().out
    assert "3 imported, 1 duplicates, 2 rejected" in out
    assert "rejected more.zip/../../escape.png: unsafe path in zip" in out
    assert "rejected sub/fake.png: the file is not an image" in out
    assert sorted(Image.objects.values_list("original_name", flat=True)) == [
        "more.zip/three.png",
        "one.png",
        "sub/two.jpg",
    ]
    assert not (tmp_path.parent / "escape.png").exists()


def test_the_command_fails_when_nothing_could_be_imported(tmp_path):
    project = make_project()
    (tmp_path / "bad.png").write_text("nope")
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_images", project.name, str(tmp_path), "--no-progress")
    with pytest.raises(CommandError, match="no project"):
        call_command("import_images", "does-not-exist", str(tmp_path), "--no-progress")


def test_the_pool_reports_copies_of_an_image_it_is_still_decoding_with_that_image(media_root, monkeypatch):
    """decode_threads > 1: a copy read while its first occurrence is in the pool is a duplicate of it
    once stored, or refused with it; the reports and rows match the one-at-a-time import."""
    good, bad = image_bytes(color=(5, 6, 7)), image_bytes(300, 300)[:200]
    items = [("g1.png", good), ("b1.png", bad), ("g2.png", good), ("b2.png", bad), ("other.png", image_bytes())]
    sources = [ImageSource(n, lambda d=d: d) for n, d in items]
    reports, owner, decoded = [], make_user("owner"), []
    real = image_services.prepare_image
    monkeypatch.setattr(image_services, "prepare_image", lambda data, limits: decoded.append(1) or real(data, limits))
    for threads, name in ((1, "one"), (4, "pool")):
        project = make_project(owner, name=name)
        decoded.clear()
        report = images_import(project=project, sources=sources, decode_threads=threads, batch_size=2)
        assert len(decoded) == 3  # g1, b1, other: a copy is never decoded, even of a refused file
        ids = dict(Image.objects.filter(project=project).values_list("original_name", "id"))
        assert sorted(ids) == ["g1.png", "other.png"]
        assert [(d.name, d.image_id) for d in report.duplicates] == [("g2.png", ids["g1.png"])]
        reports.append(
            (
                sorted((i.name for i in report.imported)),
                sorted((r.name, r.reason) for r in report.rejected),
            )
        )
    assert reports[0] == reports[1] and [n for n, _ in reports[1][1]] == ["b1.png", "b2.png"]
    assert len(_files(media_root)) == 2 * 4  # a file and a thumbnail per stored image, none for the rest
