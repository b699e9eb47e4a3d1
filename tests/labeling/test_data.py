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
