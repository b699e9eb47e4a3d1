import io

import numpy as np
import pytest
from PIL import Image

from labeling.ml.cache import ImageCache, decode_square


def _png(colour, size=(40, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_it_decodes_any_image_to_a_uint8_square(tmp_path):
    path = tmp_path / "a.jpg"
    Image.new("L", (50, 30), 200).save(path)
    pixels = decode_square(path, 16)
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    assert abs(int(pixels.mean()) - 200) <= 2


def test_it_appends_only_new_ids_and_reads_them_back_in_any_order(tmp_path):
    cache = ImageCache(tmp_path, resolution=8)
    assert cache.add([1, 2], [_png((10, 0, 0)), _png((20, 0, 0))]).added == 2
    result = cache.add([2, 3, 3], lambda i: _png((10 * i, 0, 0)))  # an opener callable
    assert result.added == 1 and not result.failed
    assert cache.ids.tolist() == [1, 2, 3]
    assert cache.read([3, 1])[:, 0, 0, 0].tolist() == [30, 10]
    assert cache.pixels().shape == (3, 8, 8, 3)


def test_it_persists_and_reopens(tmp_path):
    ImageCache(tmp_path, 8).add([5], [_png((1, 2, 3))])
    reopened = ImageCache(tmp_path, 8)
    assert reopened.ids.tolist() == [5] and reopened.read([5])[0, 0, 0].tolist() == [1, 2, 3]


def test_it_reports_undecodable_images_and_stores_the_rest(tmp_path):
    cache = ImageCache(tmp_path, 8)
    result = cache.add([1, 2], [b"not an image", _png((0, 9, 0))])
    assert result.added == 1 and list(result.failed) == [1] and "Error" in result.failed[1]
    assert cache.missing([1, 2]).tolist() == [1]


def test_it_names_ids_that_are_not_cached(tmp_path):
    cache = ImageCache(tmp_path, 8)
    with pytest.raises(KeyError, match="7"):
        cache.rows([7])
    cache.add([1], [_png((0, 0, 0))])
    with pytest.raises(KeyError, match="7"):
        cache.rows([1, 7])


def test_it_drops_an_uncommitted_tail_left_by_a_crash(tmp_path):
    cache = ImageCache(tmp_path, 8)
    cache.add([1], [_png((1, 1, 1))])
    with open(tmp_path / "pixels.u8", "ab") as f:
        f.write(b"\xff" * 100)  # pixels written, ids never committed
    cache = ImageCache(tmp_path, 8)
    cache.add([2], [_png((2, 2, 2))])
    assert cache.read([2])[0, 0, 0].tolist() == [2, 2, 2]
    assert (tmp_path / "pixels.u8").stat().st_size == 2 * 8 * 8 * 3


def test_it_decodes_in_threads_with_the_same_result(tmp_path):
    sources = [_png((i, i, i)) for i in range(10)]
    a, b = ImageCache(tmp_path / "a", 8), ImageCache(tmp_path / "b", 8)
    a.add(range(10), sources)
    b.add(range(10), sources, workers=3, chunk=4)
    assert np.array_equal(a.pixels(), b.pixels()) and a.ids.tolist() == b.ids.tolist()


def test_a_view_reads_rows_lazily_and_trains_as_the_array(tmp_path):
    import pickle

    from labeling.ml.backbone import ModelConfig
    from labeling.ml.train import PretrainConfig, Runtime, pretrain

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    cache = ImageCache(tmp_path / "c", resolution=8)
    assert cache.add(np.arange(100, 112), [Image.fromarray(p) for p in pixels]).added == 12
    ids = np.array([111, 100, 105, 103, 102, 101, 104, 106, 107, 108, 109, 110])
    view = cache.view(ids)
    assert view.shape == (12, 8, 8, 3) and view.dtype == np.uint8
    np.testing.assert_array_equal(view[np.array([0, 2])], cache.read(ids[[0, 2]]))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(view))[np.arange(12)], cache.read(ids))
    config = PretrainConfig(
        model=ModelConfig(resolution=8, projector=(16, 16)), epochs=1, batch_size=4, warmup_epochs=0
    )
    streamed = pretrain(config, view, Runtime(data_on_device=False))
    whole = pretrain(config, cache.read(ids))
    assert streamed.loss_history == whole.loss_history


def _colour_png(i: int) -> bytes:
    return _png((i * 40 % 256, 255 - i * 40 % 256, 7), size=(48, 48))


@pytest.mark.parametrize("first, second", [(32, 64), (64, 32)])
def test_a_store_opened_at_another_resolution_is_rebuilt_not_misread(tmp_path, first, second):
    # The same folder at two resolutions: the old (issue 13) cache failed one way round ("damaged")
    # and silently scrambled pixels the other way round.
    ImageCache(tmp_path, first).add([1, 2], _colour_png)
    other = ImageCache(tmp_path, second)
    assert other.rebuilt is not None and str(first) in other.rebuilt
    assert len(other) == 0 and other.missing([1, 2]).tolist() == [1, 2]
    other.add([1, 2], _colour_png)
    assert other.pixels().shape == (2, second, second, 3)
    np.testing.assert_array_equal(other.read([2, 1]), np.stack([decode_square(_colour_png(i), second) for i in (2, 1)]))
    # ... and back: the first resolution is rebuilt again, and reads right.
    back = ImageCache(tmp_path, first)
    back.add([2], _colour_png)
    np.testing.assert_array_equal(back.read([2])[0], decode_square(_colour_png(2), first))


def test_stores_at_two_resolutions_live_side_by_side(tmp_path):
    from labeling.ml.cache import store_dir

    a = ImageCache(store_dir(tmp_path, 32), 32)
    a.add([1], _colour_png)
    b = ImageCache(store_dir(tmp_path, 64), 64)
    b.add([1], _colour_png)
    again = ImageCache(store_dir(tmp_path, 32), 32)
    assert again.rebuilt is None and again.ids.tolist() == [1]
    assert again.read([1]).shape == (1, 32, 32, 3) and b.read([1]).shape == (1, 64, 64, 3)


def test_a_store_without_meta_is_rebuilt(tmp_path):
    # A store written before meta.json existed: its resolution cannot be known, so it is not read.
    ImageCache(tmp_path, 16).add([1], _colour_png)
    (tmp_path / "meta.json").unlink()
    reopened = ImageCache(tmp_path, 16)
    assert reopened.rebuilt is not None and len(reopened) == 0


def test_a_damaged_store_is_rebuilt_instead_of_failing(tmp_path):
    ImageCache(tmp_path, 8).add([1, 2], _colour_png)
    with open(tmp_path / "pixels.u8", "r+b") as f:
        f.truncate(10)  # shorter than its two committed rows
    reopened = ImageCache(tmp_path, 8)
    assert reopened.rebuilt is not None and "shorter" in reopened.rebuilt and len(reopened) == 0
    assert reopened.add([1, 2], _colour_png).added == 2


# ---- the detector's letterboxed stores ----------------------------------------------------------


def test_a_letterbox_store_holds_the_pixels_the_detector_letterboxes(tmp_path):
    from labeling.ml.cache import store_dir
    from labeling.ml.detector import letterbox_image

    wide = _png((200, 30, 60), size=(60, 20))  # not square: padded above and below
    cache = ImageCache(store_dir(tmp_path, 32, "letterbox"), 32, fit="letterbox")
    assert cache.add([5], lambda i: wide).added == 1
    decoded = np.asarray(Image.open(io.BytesIO(wide)).convert("RGB"))
    np.testing.assert_array_equal(cache.read([5])[0], letterbox_image(decoded, 32)[0])
    assert not np.array_equal(cache.read([5])[0], decode_square(wide, 32))  # not the pretraining's square
    assert store_dir(tmp_path, 32, "letterbox").name == "letterbox32" and store_dir(tmp_path, 32).name == "r32"


@pytest.mark.parametrize("first, second", [("square", "letterbox"), ("letterbox", "square")])
def test_a_store_opened_with_the_other_fit_is_rebuilt_not_misread(tmp_path, first, second):
    ImageCache(tmp_path, 32, fit=first).add([1], _colour_png)
    other = ImageCache(tmp_path, 32, fit=second)
    assert other.rebuilt is not None and len(other) == 0
    same = ImageCache(tmp_path, 32, fit=second)
    assert same.rebuilt is None


def test_a_letterbox_store_at_another_size_is_rebuilt_and_a_square_stores_meta_is_unchanged(tmp_path):
    import json

    ImageCache(tmp_path / "a", 32, fit="letterbox").add([1], _colour_png)
    bigger = ImageCache(tmp_path / "a", 64, fit="letterbox")
    assert bigger.rebuilt is not None and len(bigger) == 0
    ImageCache(tmp_path / "b", 32).add([1], _colour_png)
    # Square stores made before letterbox ones existed keep opening without a rebuild.
    assert json.loads((tmp_path / "b" / "meta.json").read_text()) == {
        "resolution": 32,
        "channels": 3,
        "dtype": "uint8",
        "format": 1,
    }
    with pytest.raises(ValueError, match="fit"):
        ImageCache(tmp_path / "c", 32, fit="crop")
