"""The project's image cache, filled from storage."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.data import fill_cache

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]


def test_the_cache_fills_in_chunks(project):
    cache, ids = fill_cache(project.id, 16, chunk=6)
    assert len(ids) == project.images.count() == len(cache)


def test_the_cache_is_kept_per_resolution_in_either_order(project):
    from labeling.ml.cache import decode_square

    first_image = project.images.order_by("id").first()
    with first_image.file.open("rb") as f:
        raw = f.read()
    for resolution in (32, 16, 32):  # 32 then 16, 16 then 32: each reads its own store, right
        cache, ids = fill_cache(project.id, resolution)
        assert cache.rebuilt is None and len(ids) == project.images.count()
        np.testing.assert_array_equal(cache.read([first_image.id])[0], decode_square(raw, resolution))


def _photo(width: int, height: int, orientation: int | None = None) -> bytes:
    """A JPEG photo with structure at every scale (gradients and a grid), so that the thumbnail and a
    fresh decode of the original can be compared pixel by pixel."""
    import io

    from PIL import Image as PILImage

    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    pixels = np.stack([x + 0 * y, y + 0 * x, ((x // 64 + y // 64) % 2) * 200 + 20], axis=-1)
    image = PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image.paste((0, 0, 0), (0, 0, width // 8, height // 8))  # top-left marker: orientation shows
    buffer = io.BytesIO()
    if orientation is None:
        image.save(buffer, "JPEG", quality=90)
    else:
        exif = PILImage.Exif()
        exif[0x0112] = orientation
        image.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def test_big_photos_fill_the_cache_from_their_import_thumbnail_and_small_images_from_the_original(settings):
    """Issue 20: a 12 MP photo is decoded once, at import; the training cache then reads its 256 px
    thumbnail, which is upright and close to a fresh decode of the original at the cache's size. Small
    images, and resolutions the thumbnail cannot cover, still read the original."""
    from annotator.models import Image
    from annotator.services.images import ImageSource, images_import
    from labeling.ml.cache import decode_square
    from tests.factories import image_bytes, make_project, make_user

    settings.THUMBNAIL_SIZE = 256
    project = make_project(owner=make_user("owner"))
    sources = [
        ImageSource("photo.jpg", lambda: _photo(1280, 960)),
        ImageSource("rotated.jpg", lambda: _photo(1280, 960, orientation=6)),  # shown 960 x 1280
        ImageSource("small.png", lambda: image_bytes(128, 96)),
    ]
    ids = [item.image_id for item in images_import(project=project, sources=sources).imported]
    rows = {row.id: row for row in Image.objects.filter(pk__in=ids)}

    def read(name) -> bytes:
        from django.core.files.storage import default_storage

        with default_storage.open(name, "rb") as handle:
            return handle.read()

    cache, cached = fill_cache(project.id, 64)
    assert sorted(cached.tolist()) == sorted(ids)
    for image_id, marker in zip(ids[:2], (np.s_[:4, :4], np.s_[:4, -4:])):
        row = rows[image_id]
        got = cache.read([image_id])[0]
        np.testing.assert_array_equal(got, decode_square(read(row.thumbnail.name), 64))  # the thumbnail's pixels
        fresh = decode_square(read(row.file.name), 64)
        assert np.abs(got.astype(int) - fresh.astype(int)).mean() < 4  # and close to the original's
        assert got[marker].max() < 40  # upright: the stored top-left marker shows top-right once rotated
    np.testing.assert_array_equal(cache.read([ids[2]])[0], decode_square(read(rows[ids[2]].file.name), 64))
    # 224 px is more than the 192 px shorter side of the thumbnails: the originals are read.
    cache, _ = fill_cache(project.id, 224)
    np.testing.assert_array_equal(cache.read([ids[0]])[0], decode_square(read(rows[ids[0]].file.name), 224))
