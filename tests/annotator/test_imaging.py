"""prepare_image: pure, no database."""

import io

import pytest
from PIL import Image as PILImage

from annotator.imaging import ImageRejected, Limits, prepare_image
from tests.factories import image_bytes

LIMITS = Limits(max_bytes=5_000_000, max_pixels=4_000_000, max_side=4000, thumbnail_size=64)


@pytest.mark.parametrize("fmt, extension", [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")])
def test_it_accepts_web_formats_as_they_are(fmt, extension):
    data = image_bytes(120, 80, fmt=fmt)
    prepared = prepare_image(data, LIMITS)
    assert (prepared.width, prepared.height, prepared.extension) == (120, 80, extension)
    assert prepared.data == data  # stored untouched
    thumb = PILImage.open(io.BytesIO(prepared.thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) == 64


def test_an_exif_rotated_jpeg_is_stored_as_uploaded_with_the_turned_size_and_an_upright_thumbnail():
    # Orientation 6: the camera was turned; viewers rotate 90° clockwise to show it upright.
    data = image_bytes(120, 80, fmt="JPEG", orientation=6)
    prepared = prepare_image(data, LIMITS)
    assert prepared.data == data and prepared.extension == "jpg"  # no second JPEG compression
    assert (prepared.width, prepared.height) == (80, 120)  # the frame the browser shows, boxes are drawn in
    thumb = PILImage.open(io.BytesIO(prepared.thumbnail)).convert("RGB")
    assert thumb.size == (43, 64)
    # The black marker at the stored top-left shows at the top-right once turned.
    assert sum(thumb.getpixel((40, 2))) < 120 and sum(thumb.getpixel((2, 2))) > 150


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_size_and_thumbnail_of_the_turned_image(orientation, monkeypatch):
    from PIL import ImageOps

    data = image_bytes(120, 80, fmt="JPEG", orientation=orientation)
    reference = ImageOps.exif_transpose(PILImage.open(io.BytesIO(data))).convert("RGB")
    _no_full_decode(monkeypatch)  # any JPEG: a reduced decode, never the full path
    prepared = prepare_image(data, LIMITS)
    assert prepared.data == data
    assert (prepared.width, prepared.height) == reference.size
    thumb = PILImage.open(io.BytesIO(prepared.thumbnail)).convert("RGB")
    expected = reference.resize(thumb.size)
    corners = [(0, 0), (thumb.width - 1, 0), (0, thumb.height - 1), (thumb.width - 1, thumb.height - 1)]
    # The marker sits in the same corner as in the reference turn (dark there, red elsewhere).
    assert [sum(thumb.getpixel(c)) < 200 for c in corners] == [sum(expected.getpixel(c)) < 200 for c in corners]
    assert sum(sum(expected.getpixel(c)) < 200 for c in corners) == 1


def test_a_rotated_non_jpeg_image_is_re_encoded_upright():
    data = image_bytes(120, 80, fmt="WEBP", orientation=6)
    prepared = prepare_image(data, LIMITS)
    assert (prepared.width, prepared.height) == (80, 120)
    stored = PILImage.open(io.BytesIO(prepared.data))
    assert stored.size == (80, 120) and stored.getexif().get(0x0112, 1) == 1
    pixels = stored.convert("RGB")
    assert sum(pixels.getpixel((75, 4))) < 60 and sum(pixels.getpixel((4, 4))) > 150


def test_it_rejects_a_truncated_file():
    data = image_bytes(200, 200, fmt="PNG", color=(10, 200, 30))
    with pytest.raises(ImageRejected, match="damaged or truncated|not an image"):
        prepare_image(data[: len(data) // 2], LIMITS)


def test_it_rejects_text_named_png():
    with pytest.raises(ImageRejected, match="not an image"):
        prepare_image(b"hello, I am a text file\n" * 10, LIMITS)


def test_it_rejects_a_decompression_bomb_before_decoding():
    # A 5000×5000 PNG of one colour compresses to a few KB but decodes to 25 megapixels.
    buffer = io.BytesIO()
    PILImage.new("L", (5000, 5000)).save(buffer, "PNG")
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(ImageRejected, match="megapixels"):
        prepare_image(buffer.getvalue(), LIMITS)


def test_it_rejects_files_over_the_size_limit():
    with pytest.raises(ImageRejected, match="limit is 0.0 MB"):
        prepare_image(image_bytes(), Limits(max_bytes=10, max_pixels=10**6, max_side=100, thumbnail_size=64))


def test_it_rejects_an_empty_file():
    with pytest.raises(ImageRejected, match="empty"):
        prepare_image(b"", LIMITS)


def test_it_converts_tiff_to_png_for_browsers():
    buffer = io.BytesIO()
    PILImage.new("RGB", (30, 20), (1, 2, 3)).save(buffer, "TIFF")
    prepared = prepare_image(buffer.getvalue(), LIMITS)
    assert prepared.extension == "png"
    assert PILImage.open(io.BytesIO(prepared.data)).format == "PNG"


def test_it_flattens_transparency_in_thumbnails():
    buffer = io.BytesIO()
    PILImage.new("RGBA", (40, 40), (0, 0, 0, 0)).save(buffer, "PNG")
    thumb = PILImage.open(io.BytesIO(prepare_image(buffer.getvalue(), LIMITS).thumbnail))
    assert thumb.mode == "RGB" and thumb.getpixel((5, 5))[0] > 240  # white, not black


def _photo(width=1600, height=1200, **save) -> bytes:
    # Noise: every 8x8 block has entropy-coded data to the end of the file, as a real photo does.
    import numpy as np

    pixels = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, "JPEG", quality=90, **save)
    return buffer.getvalue()


BIG = Limits(max_bytes=50_000_000, max_pixels=40_000_000, max_side=8000, thumbnail_size=256)


def _no_full_decode(monkeypatch):
    from annotator import imaging

    def refuse(*args):
        raise AssertionError("a JPEG must not be fully decoded")

    monkeypatch.setattr(imaging, "_open_checked", refuse)


def test_an_upright_jpeg_is_stored_as_is_with_a_thumbnail_from_a_reduced_decode(monkeypatch):
    data = _photo()
    _no_full_decode(monkeypatch)
    prepared = prepare_image(data, BIG)
    assert prepared.data == data and (prepared.width, prepared.height, prepared.extension) == (1600, 1200, "jpg")
    assert PILImage.open(io.BytesIO(prepared.thumbnail)).size == (256, 192)


@pytest.mark.parametrize("keep", [0.5, 0.98])
@pytest.mark.parametrize("progressive", [False, True])
def test_the_reduced_decode_still_refuses_a_truncated_jpeg(monkeypatch, keep, progressive):
    data = _photo(progressive=progressive)
    _no_full_decode(monkeypatch)  # the cheaper check alone must catch it
    with pytest.raises(ImageRejected, match="damaged or truncated"):
        prepare_image(data[: int(len(data) * keep)], BIG)
