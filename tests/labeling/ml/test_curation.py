import numpy as np
import pytest

from labeling.ml.curation import (
    DUPLICATE_FEATURE_CANDIDATES,
    DUPLICATE_PIXEL_THRESHOLD,
    DUPLICATE_VIEW_CANDIDATES,
    aligned_similarity,
    diverse_scores,
    duplicate_groups,
    group_pairs,
    hybrid_order,
    k_center,
    likely_mistakes,
    near_duplicate_groups,
    small_pixels,
)
from labeling.ml.curation import nearest, self_confidence, similar_pairs, unit_half


def _blocks(ids, features, size):
    return [(ids[i : i + size], features[i : i + size]) for i in range(0, len(ids), size)]


def test_it_finds_the_same_neighbours_as_a_full_cosine_sort_across_blocks_and_chunks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(203, 16)).astype(np.float16)
    ids = np.arange(1000, 1203, dtype=np.int64)
    queries = x[[0, 50, 202]]
    got = nearest(queries, _blocks(ids, x, 64), k=7, chunk_rows=10)

    unit = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    q = unit[[0, 50, 202]]
    sims = q @ unit.T
    want = ids[np.argsort(-sims, axis=1, kind="stable")[:, :7]]
    assert got.ids.tolist() == want.tolist()
    assert got.ids[:, 0].tolist() == [1000, 1050, 1202]  # each query is its own nearest
    np.testing.assert_allclose(got.scores, np.sort(sims, axis=1)[:, ::-1][:, :7], atol=1e-3)


def test_it_pads_with_minus_one_when_there_are_fewer_rows_than_k():
    x = np.eye(3, dtype=np.float16)
    got = nearest(x[:1], [(np.array([5, 6, 7]), x)], k=5)
    assert got.ids[0, 0] == 5 and sorted(got.ids[0, 1:3].tolist()) == [6, 7]
    assert got.ids[0, 3:].tolist() == [-1, -1]
    assert np.isneginf(got.scores[0, 3:]).all()


def test_k_center_picks_one_point_of_each_cluster_before_a_second_of_any():
    rng = np.random.default_rng(1)
    centres = np.eye(4) * 10
    x = np.concatenate([c + rng.normal(scale=0.1, size=(25, 4)) for c in centres]).astype(np.float32)
    picks = k_center(x, 4)
    assert sorted(set(picks // 25)) == [0, 1, 2, 3]
    assert picks[0] == 0  # without centres it starts at row ``first``
    assert len(set(k_center(x, 100).tolist())) == 100  # every row once, then no repeats


def test_k_center_avoids_what_is_already_labelled():
    x = np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99], [-1, 0]], dtype=np.float32)
    picks = k_center(x, 2, centres=np.array([[1, 0], [0, 1]], dtype=np.float32))
    assert picks[0] == 4  # the only direction no centre covers
    assert k_center(x, 0).tolist() == []


def test_k_center_covers_better_than_random():
    # The property the greedy 2-approximation promises: the farthest row from its nearest pick
    # is no farther than a random pick's.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)

    def radius(picks):
        return (1 - unit @ unit[picks].T).min(axis=1).max()

    greedy = radius(k_center(x, 20))
    randoms = [radius(rng.choice(300, 20, replace=False)) for _ in range(20)]
    assert greedy < min(randoms)


def test_hybrid_takes_uncertain_rows_but_not_two_copies_of_one():
    x = np.array([[1, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=np.float32)
    u = np.array([0.9, 0.9, 0.8, 0.1, 0.0])
    picks = hybrid_order(x, u, 2, pool_factor=2)  # pool: rows 0, 1, 2, 3
    assert picks.tolist() == [0, 3]  # row 3 is the farthest from row 0 in the pool
    assert 4 not in hybrid_order(x, u, 2, pool_factor=1).tolist()


def test_it_pairs_rows_above_the_threshold_once_each():
    x = np.array([[1, 0], [1, 0.01], [0, 1], [0.01, 1], [-1, 0]], dtype=np.float32)
    ids = np.array([10, 11, 12, 13, 14])
    pairs = similar_pairs(ids, x, threshold=0.99, chunk_rows=2)
    assert sorted(map(tuple, pairs.tolist())) == [(10, 11), (12, 13)]


def test_union_find_closes_chains_and_names_groups_by_their_smallest_id():
    ids = np.array([9, 3, 5, 7, 1])
    groups = group_pairs(ids, np.array([[9, 5], [5, 7], [3, 1]]))
    assert groups.tolist() == [5, 1, 5, 5, 1]
    assert group_pairs(ids, np.zeros((0, 2))).tolist() == [9, 3, 5, 7, 1]


def test_duplicate_groups_from_features():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(4, 32)).astype(np.float32)
    x = np.concatenate([base, base[:2] + rng.normal(scale=0.01, size=(2, 32))]).astype(np.float16)
    groups = duplicate_groups(np.arange(6), x, threshold=0.95)
    assert groups.tolist() == [0, 1, 2, 3, 0, 1]


def _photos(n, seed=0, size=64):
    """n unrelated smooth random RGB images (8 x 8 noise, upsampled: about the detail a photo keeps at
    the cache's 32 px)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return [Image.fromarray(cells).resize((size, size), Image.Resampling.BICUBIC) for cells in noise]


def _copy(image, kind):
    import io

    from PIL import Image, ImageEnhance

    w, h = image.size
    if kind == "crop":  # 85 %, off centre, resized back
        return image.crop((int(0.1 * w), int(0.02 * h), int(0.95 * w), int(0.87 * h))).resize((w, h))
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=50)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return ImageEnhance.Brightness(ImageEnhance.Color(image).enhance(1.2)).enhance(0.9)


def _squares(images):
    from labeling.ml.cache import decode_square

    return small_pixels(np.stack([decode_square(image, 32) for image in images]))


def test_the_pixels_of_a_crop_a_re_encode_and_a_colour_shift_correlate_and_other_images_do_not():
    base = _photos(4)
    copies = [_copy(base[0], "crop"), _copy(base[1], "jpeg"), _copy(base[2], "colour")]
    a, b = _squares(base[:3] + base[:3]), _squares(copies + base[1:4])
    similarity = aligned_similarity(a, b)
    assert (similarity[:3] >= DUPLICATE_PIXEL_THRESHOLD).all(), similarity
    assert (similarity[3:] < 0.5).all(), similarity  # image i against image i + 1
    assert aligned_similarity(a[:1], a[:1])[0] == pytest.approx(1.0, abs=1e-4)


def test_near_duplicates_are_confirmed_by_their_pixels_whatever_their_features_say():
    base = _photos(6, seed=1)
    pixels = _squares(base + [_copy(base[0], "crop"), _copy(base[1], "colour")])
    rng = np.random.default_rng(0)
    features = rng.normal(size=(8, 16)).astype(np.float32)
    features[5] = features[4]  # images 4 and 5 embed alike but are different pictures
    features[3] = features[2]  # ... and so do 2 and 3, but 3's pixels are not in the cache
    seen = np.array([True, True, True, False, True, True, True, True])
    rules = dict(
        threshold=0.98,
        pixel_threshold=DUPLICATE_PIXEL_THRESHOLD,
        feature_candidates=DUPLICATE_FEATURE_CANDIDATES,
        view_candidates=DUPLICATE_VIEW_CANDIDATES,
        view_max=100,
    )
    groups = near_duplicate_groups(np.arange(10, 18), features, pixels=pixels, seen=seen, **rules)
    # 16 (a crop of 10) and 17 (a colour shift of 11) join their originals though their features
    # are unrelated; 14 and 15 stay apart (their pixels differ); 12 and 13 have no pixels to
    # compare, so their features decide.
    assert groups.tolist() == [10, 11, 12, 12, 14, 15, 10, 11]
    assert near_duplicate_groups(np.arange(10, 18), features, **rules).tolist() == [10, 11, 12, 12, 14, 14, 16, 17]


def test_self_confidence_is_the_probability_of_what_the_person_said():
    y = np.array([[1, 0], [0, 1]])
    p = np.array([[0.9, 0.2], [np.nan, 0.3]])
    conf = self_confidence(y, p)
    np.testing.assert_allclose(conf[0], [0.9, 0.8])
    assert np.isnan(conf[1, 0]) and conf[1, 1] == pytest.approx(0.3)
    with pytest.raises(ValueError):
        self_confidence(y, p[:1])


def test_it_ranks_a_given_tag_with_low_probability_and_a_missing_one_with_high_probability_first():
    y = np.array([[1, 0], [1, 0], [0, 0], [1, 1]])
    p = np.array([[0.9, 0.15], [0.05, 0.1], [0.2, 0.97], [np.nan, np.nan]])
    m = likely_mistakes(y, p)
    assert np.argsort(-m.score, kind="stable").tolist()[:2] == [2, 1]
    assert m.label.tolist() == [1, 0, 1, -1]
    assert m.given.tolist() == [False, True, False, False]
    assert m.score[1] == pytest.approx(0.95) and m.score[3] == 0.0


def test_diverse_scores_put_the_picks_first_in_pick_order_then_the_worst_covered():
    x = np.array([[1, 0], [0.99, 0.14], [0, 1], [-1, 0], [0.7, 0.7]], dtype=np.float32)
    scores = diverse_scores(x, 2)
    order = np.argsort(-scores, kind="stable").tolist()
    assert order[:2] == k_center(x, 2).tolist() == [0, 3]
    assert scores[order[1]] > 1 >= scores[order[2]]
    assert order[2] == 2  # 90 degrees from both picks: covered worst
    assert scores[1] < scores[4] < scores[2]


def test_unit_half_blocks_give_the_float32_answer():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 32)).astype(np.float16)
    ids = np.arange(500)
    exact = nearest(x[:3], _blocks(ids, x, 128), k=5)
    fast = nearest(x[:3], [(i, unit_half(f)) for i, f in _blocks(ids, x, 128)], k=5, unit=True)
    assert fast.ids[:, 0].tolist() == [0, 1, 2]
    np.testing.assert_allclose(fast.scores, exact.scores, atol=2e-3)


def test_rare_label_scores_favour_a_likely_rare_label_over_a_likelier_common_one():
    from labeling.ml.curation import rare_label_scores

    probs = np.array([[0.9, 0.1], [0.3, 0.6], [0.2, 0.2], [0.99, np.nan]])
    score, column = rare_label_scores(probs, np.array([99, 9]), np.array([True, True]))
    assert column.tolist() == [1, 1, 1, 0]
    assert np.argsort(-score, kind="stable").tolist()[0] == 1  # 0.6 of the rare label
    assert score[1] == pytest.approx(0.6) and score[0] == pytest.approx(0.1)
    none, at = rare_label_scores(probs, np.array([99, 9]), np.array([False, False]))
    assert none.tolist() == [0, 0, 0, 0] and at.tolist() == [-1] * 4
