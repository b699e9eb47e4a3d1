"""Upload cost bounds (issue 14, item 8): copies are never decoded, decodes are bounded per
process, quotas and per-request caps answer at once with what to do."""

import threading

import pytest
from django.test import Client


from annotator.models import Image
from annotator.services import images as image_services
from annotator.services.images import images_import
from annotator.sources import ImageSource
from tests.factories import image_bytes, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def decodes(monkeypatch):
    calls = []
    real = image_services.prepare_image

    def counting(data, limits):
        calls.append(len(data))
        return real(data, limits)

    monkeypatch.setattr(image_services, "prepare_image", counting)
    return calls


def _sources(items):
    return [ImageSource(name, lambda d=data: d) for name, data in items]


@pytest.mark.parametrize("threads", [1, 3])
def test_it_decodes_repeated_files_once(decodes, threads):
    project = make_project()
    data = image_bytes(fmt="WEBP")
    report = images_import(
        project=project, sources=_sources([(f"copy{i}.webp", data) for i in range(40)]), decode_threads=threads
    )
    assert len(decodes) == 1
    assert len(report.imported) == 1 and len(report.duplicates) == 39
    assert {d.image_id for d in report.duplicates} == {report.imported[0].image_id}


def test_it_never_decodes_a_file_the_project_already_has(decodes):
    project = make_project()
    data = image_bytes(fmt="PNG")
    first = images_import(project=project, sources=_sources([("a.png", data)]))
    decodes.clear()
    again = images_import(project=project, sources=_sources([("b.png", data), ("c.png", data)]))
    assert decodes == []
    assert [(d.name, d.image_id) for d in again.duplicates] == [
        ("b.png", first.imported[0].image_id),
        ("c.png", first.imported[0].image_id),
    ]


def test_it_refuses_a_file_when_every_decode_slot_stays_busy(settings, monkeypatch, decodes):
    settings.IMAGE_DECODE_WAIT_SECONDS = 1
    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(image_services, "_DECODE_SLOTS", slots)
    slots.acquire()  # another request is decoding
    try:
        report = images_import(project=make_project(), sources=_sources([("a.png", image_bytes())]))
    finally:
        slots.release()
    assert decodes == []
    assert [r.reason for r in report.rejected] == ["the server is busy decoding other uploads; try again shortly"]


@pytest.mark.parametrize("threads", [1, 3])
def test_it_enforces_the_project_quota_before_decoding(settings, decodes, threads):
    settings.PROJECT_MAX_IMAGES = 2
    project = make_project()
    colours = [(i, 0, 0) for i in range(3)]
    report = images_import(
        project=project,
        sources=_sources([(f"{i}.png", image_bytes(color=c)) for i, c in enumerate(colours)]),
        decode_threads=threads,  # images in the pool hold their place in the quota
    )
    assert [i.name for i in report.imported] == ["0.png", "1.png"]
    assert len(decodes) == 2
    assert "PROJECT_MAX_IMAGES" in report.rejected[0].reason and report.rejected[0].name == "2.png"
    assert Image.objects.filter(project=project).count() == 2


def test_it_enforces_the_user_quota_across_their_projects(settings):
    settings.USER_MAX_IMAGES = 1
    owner = make_user("owner")
    images_import(project=make_project(owner, name="one"), sources=_sources([("a.png", image_bytes())]))
    report = images_import(
        project=make_project(owner, name="two"), sources=_sources([("b.png", image_bytes(color=(1, 1, 1)))])
    )
    assert report.imported == [] and "USER_MAX_IMAGES" in report.rejected[0].reason


def _client_for_admin():
    owner = make_user("owner")
    project = make_project(owner)
    client = Client()
    client.force_login(owner)
    return client, project


def test_it_answers_413_to_a_request_over_the_byte_cap_before_parsing(settings, decodes):
    settings.UPLOAD_MAX_BYTES_PER_REQUEST = 1000
    client, project = _client_for_admin()
    files = [("files", (f"{i}.png", image_bytes(200, 200, color=(i, 2, 3)))) for i in range(3)]
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        f"/api/projects/{project.id}/images/", {"files": [SimpleUploadedFile(n, d) for _, (n, d) in files]}
    )
    assert response.status_code == 413
    assert "smaller batches" in response.json()["error"]
    assert decodes == [] and not Image.objects.exists()


def test_it_refuses_more_files_than_a_request_may_carry(settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    client, project = _client_for_admin()
    response = client.post(
        f"/api/projects/{project.id}/images/",
        {"files": [SimpleUploadedFile(f"{i}.png", image_bytes(color=(i, 0, 0))) for i in range(4)]},
    )
    assert response.status_code in (400, 413)
    assert "files" in response.json()["error"].lower()
    assert not Image.objects.exists()


def _webp_bomb(side: int = 6000) -> bytes:
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (side, side), (10, 20, 30)).save(buffer, "WEBP", lossless=True)  # a few KB
    return buffer.getvalue()


def test_it_refuses_an_image_whose_decode_would_exceed_the_memory_budget_from_its_header(settings):
    settings.IMAGE_DECODE_MAX_MB = 400  # 6000² WebP: 36 MP × 16 bytes = 549 MB to decode
    data = _webp_bomb()
    report = images_import(project=make_project(), sources=_sources([("bomb.webp", data)]))
    assert report.imported == []
    assert "549 MB of memory to decode; the limit is 400 MB" in report.rejected[0].reason


def test_a_budget_that_fits_admits_the_same_image(settings):
    settings.IMAGE_DECODE_MAX_MB = 600
    report = images_import(project=make_project(), sources=_sources([("big.webp", _webp_bomb())]))
    assert [i.name for i in report.imported] == ["big.webp"]
