"""Bad input through the HTTP endpoints: each is a 4xx whose message says what to fix, and nothing
of it is stored (no row, no file). The pure checks behind these are in test_imaging/test_sources."""

import io
import json
import struct
import zipfile
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image as PILImage

from annotator.models import Box, Image
from tests.factories import add_images, image_bytes, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, team):
    client.force_login(team.owner)
    return team.project, client


def _stored_files(media_root):
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []


def _png_claiming(width: int, height: int) -> bytes:
    """A valid 1×1 PNG whose header claims another size (checksum fixed), as a crafted bomb would."""
    data = image_bytes(1, 1)
    ihdr = data[12:16] + struct.pack(">II", width, height) + data[24:29]
    return data[:8] + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:]


def _zip(entries: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _truncated_png() -> bytes:
    buffer = io.BytesIO()
    PILImage.effect_noise((300, 300), 60).save(buffer, "PNG")
    return buffer.getvalue()[:-4000]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.png", b"just some text, not an image\n" * 20, "not an image Twinlabel can read"),
        ("script.jpg", b"<script>alert(1)</script>", "not an image Twinlabel can read"),
        ("empty.png", b"", "the file is empty"),
        ("cut.png", _truncated_png(), "damaged or truncated"),
        ("bomb.png", _png_claiming(40_000, 40_000), "decompression bomb"),
        ("wide.png", _png_claiming(31_000, 2), "30000 pixels a side"),
        ("tall.png", _png_claiming(2, 31_000), "30000 pixels a side"),
        ("pack.zip", _zip({"../../outside.png": image_bytes()}), "unsafe path in zip"),
        ("abs.zip", _zip({"/etc/cron.d/x.png": image_bytes()}), "unsafe path in zip"),
        ("ratio.zip", _zip({"zeros.png": b"\0" * 30_000_000}, zipfile.ZIP_DEFLATED), "zip bomb"),
        ("broken.zip", b"PK\x03\x04 not really a zip", "not a readable zip file"),
    ],
)
def test_a_bad_upload_is_a_400_that_says_why_and_stores_nothing(owner_client, media_root, name, content, message):
    project, client = owner_client
    response = client.post(
        reverse("api_project_images", args=[project.id]), {"files": [SimpleUploadedFile(name, content)]}
    )
    assert response.status_code == 400
    (rejected,) = response.json()["rejected"]
    assert message in rejected["reason"], rejected
    assert Image.objects.count() == 0 and _stored_files(media_root) == []


def test_an_oversized_file_is_refused_without_being_decoded(owner_client, media_root, settings):
    project, client = owner_client
    settings.IMAGE_MAX_BYTES = 1000
    response = client.post(
        reverse("api_project_images", args=[project.id]),
        {"files": [SimpleUploadedFile("big.png", _truncated_png() + b"padding")]},
    )
    assert response.status_code == 400
    assert "the limit is 0.0 MB" in response.json()["rejected"][0]["reason"]
    assert Image.objects.count() == 0 and _stored_files(media_root) == []


def test_a_zip_that_inflates_past_the_total_limit_is_refused_whole(owner_client, media_root, settings):
    project, client = owner_client
    settings.ZIP_MAX_TOTAL_BYTES = 50_000
    entries = {f"img-{i}.png": image_bytes(100, 100, color=(i, 0, 0)) for i in range(200)}  # ~each < 1 KB packed
    archive = _zip(entries, zipfile.ZIP_DEFLATED)
    assert sum(len(v) for v in entries.values()) > 50_000  # every entry alone is small
    response = client.post(
        reverse("api_project_images", args=[project.id]), {"files": [SimpleUploadedFile("many.zip", archive)]}
    )
    assert response.status_code == 400
    (rejected,) = response.json()["rejected"]
    assert rejected["name"] == "many.zip" and "split it into smaller zips" in rejected["reason"]
    assert Image.objects.count() == 0 and _stored_files(media_root) == []


def test_a_good_zip_upload_imports_its_images(owner_client):
    project, client = owner_client
    archive = _zip({"a/one.png": image_bytes(color=(1, 2, 3)), "two.jpg": image_bytes(fmt="JPEG"), "readme.txt": b"hi"})
    response = client.post(
        reverse("api_project_images", args=[project.id]), {"files": [SimpleUploadedFile("set.zip", archive)]}
    )
    assert response.status_code == 200
    assert sorted(i["name"] for i in response.json()["imported"]) == ["set.zip/a/one.png", "set.zip/two.jpg"]


def test_file_names_cannot_steer_where_files_are_stored(owner_client, media_root):
    project, client = owner_client
    upload = SimpleUploadedFile("../../../../tmp/evil.png", image_bytes())
    response = client.post(reverse("api_project_images", args=[project.id]), {"files": [upload]})
    assert response.status_code == 200
    image = Image.objects.get()
    assert ".." not in image.original_name and "/" not in image.original_name
    for stored in _stored_files(media_root):
        assert stored.resolve().is_relative_to(media_root.resolve() / "projects" / str(project.id))


def test_an_oversized_json_body_is_a_413_and_changes_nothing(client, settings):
    owner = make_user("owner")
    project = make_project(owner=owner)
    (image_id,) = add_images(project, 1)
    cat = project.labels.first()
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    boxes = [{"label": cat.id, "x": 1, "y": 1, "w": 2, "h": 2}] * 100
    client.force_login(owner)
    response = client.put(
        reverse("api_image_annotations", args=[image_id]),
        json.dumps({"version": 1, "boxes": boxes}),
        content_type="application/json",
    )
    assert response.status_code == 413
    assert "over the limit of 2,000 bytes" in response.json()["error"]
    assert Box.objects.count() == 0 and Image.objects.get(pk=image_id).version == 1


@pytest.mark.parametrize(
    "raw, message",
    [
        ("[1, 2, 3]", "must be a JSON object"),
        (b"\xff\xfe{", "not valid JSON"),
        ('{"version": 1, "boxes": [{"label": %(cat)d, "x": -5, "y": -5, "w": 4, "h": 4}]}', "no area"),
        ('{"version": 1, "boxes": [{"label": %(cat)d, "x": 1e308, "y": 1, "w": 1e308, "h": 1}]}', "outside"),
        ('{"version": 1, "boxes": [{"label": %(cat)d, "x": -Infinity, "y": 1, "w": 2, "h": 2}]}', "finite"),
        ('{"version": true}', "must be an integer"),
        ('{"version": 1, "tags": "cat"}', "must be a list of label ids"),
    ],
)
def test_more_malformed_annotation_bodies_are_400s(client, raw, message):
    owner = make_user("owner")
    project = make_project(owner=owner)
    (image_id,) = add_images(project, 1)
    client.force_login(owner)
    body = raw % {"cat": project.labels.first().id} if isinstance(raw, str) else raw
    response = client.put(reverse("api_image_annotations", args=[image_id]), body, content_type="application/json")
    assert response.status_code == 400 and message in response.json()["error"]
    assert Box.objects.count() == 0 and Image.objects.get(pk=image_id).version == 1
