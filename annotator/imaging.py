"""Decode, check and normalise one uploaded image. Pure: bytes in, bytes out, no ORM, no storage.

Every entry point (browser upload, ``import_images``, the demo, the API) goes through
``prepare_image`` so that every image in the database passed the same checks.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# Formats a browser can show as they are. Anything else Pillow can read is converted to PNG.
WEB_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
ACCEPTED_FORMATS = set(WEB_FORMATS) | {"TIFF", "MPO"}
# EXIF orientation tag: 1 (or absent) means the pixels are already upright.
_ORIENTATION = 0x0112


class ImageRejected(ValueError):
    """The file is not an image we can accept; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int
    max_side: int
    thumbnail_size: int
    max_decode_bytes: int | None = None  # the memory one decode may take, estimated from the header


# Bytes of memory per pixel while Pillow decodes (measured with Pillow 11, VmHWM): it keeps RGB as
# 4 bytes a pixel, and its WebP decoder holds about 16 bytes a pixel (a 10000² WebP of 3 KB: 1.5 GB).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2}
_WEBP_BYTES_PER_PIXEL = 16


def decode_bytes(image: Image.Image) -> int:
    """The memory decoding this (header-only) image will take."""
    per_pixel = _WEBP_BYTES_PER_PIXEL if image.format == "WEBP" else _BYTES_PER_PIXEL.get(image.mode, 4)
    return image.width * image.height * per_pixel


@dataclass(frozen=True)
class PreparedImage:
    sha256: str  # of the bytes as uploaded: the same file uploaded twice is a duplicate
    data: bytes  # what we store: the upload itself (any JPEG, any upright image), or an upright re-encoding
    extension: str
    width: int
    height: int
    thumbnail: bytes  # JPEG


def prepare_image(data: bytes, limits: Limits) -> PreparedImage:
    if not data:
        raise ImageRejected("the file is empty")
    if len(data) > limits.max_bytes:
        raise ImageRejected(f"the file is {len(data) / 1e6:.1f} MB; the limit is {limits.max_bytes / 1e6:.1f} MB")
    sha256 = hashlib.sha256(data).hexdigest()
    jpeg = _jpeg_as_uploaded(data, limits)
    if jpeg is not None:
        return jpeg(sha256)
    image = _open_checked(data, limits)
    orientation = image.getexif().get(_ORIENTATION, 1)
    fmt = image.format
    if orientation not in (1, None) or fmt not in WEB_FORMATS:
        image = ImageOps.exif_transpose(image)
        data, extension = _encode_upright(image, fmt)
    else:
        extension = WEB_FORMATS[fmt]
    return PreparedImage(
        sha256=sha256,
        data=data,
        extension=extension,
        width=image.width,
        height=image.height,
        thumbnail=_thumbnail(image, limits.thumbnail_size),
    )


# EXIF orientations that swap width and height (a transpose, or a 90° or 270° turn).
_SWAPS_SIDES = {5, 6, 7, 8}


def _jpeg_as_uploaded(data: bytes, limits: Limits) -> Callable[[str], PreparedImage] | None:
    """A JPEG (the camera and phone case) is stored byte for byte as uploaded, EXIF orientation
    included: browsers show it turned (CSS ``image-orientation: from-image`` and
    ``createImageBitmap``'s default, both checked in Chromium by tests/browser/test_orientation.py),
    and every server-side decoder turns it too (labeling.ml.cache._upright, labeling.detection).
    ``width`` and ``height`` are those of the turned image, the frame boxes are drawn in, as the
    browser and every other tool (Ultralytics, CVAT, Label Studio) read it. Nothing is re-encoded,
    so nothing is lost to a second JPEG compression, and the pixels are only needed for the
    thumbnail: decoded with ``draft`` (libjpeg scales by 1/2..1/8 in the DCT, about 10x less work
    for a 12-megapixel photo), then turned. That decode still reads and entropy-decodes every
    byte of every scan, so a truncated file fails it as it fails a full decode
    (tests/annotator/test_imaging.py). Returns ``sha256 -> PreparedImage``, or None for any other
    image (the full path: verify, full decode, upright re-encode where needed)."""
    with _decoding_errors():
        image = _header_checked(data, limits)
        if image.format != "JPEG":
            return None
        orientation = image.getexif().get(_ORIENTATION, 1)
        width, height = image.size
        if orientation in _SWAPS_SIDES:
            width, height = height, width
        image.draft("RGB" if image.mode == "CMYK" else image.mode, (limits.thumbnail_size, limits.thumbnail_size))
        image.load()  # every scan read: truncated data fails here, not in an annotator's browser
        thumbnail = _thumbnail(ImageOps.exif_transpose(image), limits.thumbnail_size)
    return lambda sha256: PreparedImage(
        sha256=sha256, data=data, extension="jpg", width=width, height=height, thumbnail=thumbnail
    )


def _open_checked(data: bytes, limits: Limits) -> Image.Image:
    with _decoding_errors():
        probe = Image.open(io.BytesIO(data))
        probe.verify()  # structure and checksums, before we spend time decoding
        image = _header_checked(data, limits)
        image.load()  # a full decode: truncated data fails here, not in an annotator's browser
    return image


def _header_checked(data: bytes, limits: Limits) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    if image.format not in ACCEPTED_FORMATS:
        raise ImageRejected(f"{image.format} images are not supported; use JPEG, PNG or WebP")
    width, height = image.size  # from the header: checked before any pixel is decoded
    if width < 1 or height < 1:
        raise ImageRejected("the image has no pixels")
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise ImageRejected(
            f"the image is {width}×{height} pixels; the limit is {limits.max_pixels / 1e6:.0f} megapixels "
            f"and {limits.max_side} pixels a side"
        )
    if limits.max_decode_bytes and decode_bytes(image) > limits.max_decode_bytes:
        raise ImageRejected(
            f"the {image.format} image ({width}×{height}) would take {decode_bytes(image) / 2**20:,.0f} MB of "
            f"memory to decode; the limit is {limits.max_decode_bytes / 2**20:,.0f} MB; send a smaller image"
        )
    return image


@contextlib.contextmanager
def _decoding_errors() -> Iterator[None]:
    """Pillow's errors as ImageRejected with a message for the person who sent the file."""
    try:
        with warnings.catch_warnings():
            # Pillow warns on large images; our own pixel limit is the one that decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except ImageRejected:
        raise
    except Image.DecompressionBombError:
        raise ImageRejected("the image decodes to more pixels than allowed (decompression bomb)") from None
    except UnidentifiedImageError:
        raise ImageRejected("the file is not an image Twinlabel can read (JPEG, PNG, WebP, GIF, BMP or TIFF)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageRejected(f"the image is damaged or truncated ({error})") from None


def _encode_upright(image: Image.Image, source_format: str | None) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if source_format in ("JPEG", "MPO") and image.mode in ("RGB", "L", "CMYK"):
        image.convert("RGB" if image.mode == "CMYK" else image.mode).save(buffer, "JPEG", quality=95)
        return buffer.getvalue(), "jpg"
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "I;16"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    image.save(buffer, "PNG")
    return buffer.getvalue(), "png"


def _thumbnail(image: Image.Image, size: int) -> bytes:
    thumb = image.copy()
    if getattr(image, "n_frames", 1) > 1:
        thumb.seek(0)
    thumb.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if thumb.mode != "RGB":
        background = Image.new("RGB", thumb.size, "white")
        rgba = thumb.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        thumb = background
    buffer = io.BytesIO()
    thumb.save(buffer, "JPEG", quality=82)
    return buffer.getvalue()
