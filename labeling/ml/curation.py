"""Curation from the stored embeddings: nearest neighbours, diverse picks, near-duplicate groups
and likely labelling mistakes. Pure torch and numpy; the callers read the float16 blocks.

- Nearest neighbours are exact: cosine similarity of unit rows, one matrix product per chunk of a
  block, and a running top-k, so memory is ``chunk_rows`` x D whatever the project's size.
- Diversity is greedy k-center (Gonzalez 1985; the "core-set" of Sener & Savarese 2018): each pick
  is the image farthest (in cosine distance) from everything picked or labelled so far, a
  2-approximation of the smallest radius that covers the set with k centres.
- Near-duplicates are pairs above a cosine threshold, closed transitively by union-find. With the
  pixels at hand (the worker's image cache), candidate pairs (features, and 8 x 8 grey views of
  the image and of crops of it) are confirmed by the pixels: the best normalised cross-correlation
  of the RGB images over scales and shifts, so a crop, a re-encode or a colour shift of an image is
  found and two different images that merely embed alike are not.
- Likely mistakes rank labelled images by self-confidence (Northcutt et al. 2021, confident
  learning's simplest ranking): the out-of-fold probability the probe gives to what the person
  said. A given tag with a low probability or a missing tag with a high one ranks high.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

Block = tuple[np.ndarray, np.ndarray]  # (ids int64 (N,), features float16 (N, D))


def unit_rows(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, D) -> float32 (N, D) rows of unit length (a zero row stays zero)."""
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    t = t.float()
    unit: torch.Tensor = t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit


@dataclass(frozen=True)
class Neighbours:
    ids: npt.NDArray[np.int64]  # (Q, k) nearest first; -1 where fewer than k rows exist
    scores: npt.NDArray[np.float32]  # (Q, k) cosine similarity; -inf where ids is -1


@torch.no_grad()
def nearest(
    queries: np.ndarray | torch.Tensor,
    blocks: Iterable[Block],
    *,
    k: int,
    chunk_rows: int = 65_536,
    unit: bool = False,
) -> Neighbours:
    """The ``k`` rows of ``blocks`` most similar (cosine) to each query, exact. Blocks are read one
    at a time and ``chunk_rows`` rows of a block are compared at once, so memory stays at
    Q x chunk_rows scores plus one chunk of features. ``unit``: the blocks' rows are unit length
    already (``unit_half``), so they are multiplied as they are, in their own dtype."""
    q = unit_rows(queries)  # (Q, D)
    best_scores = torch.full((len(q), k), float("-inf"))
    best_ids = torch.full((len(q), k), -1, dtype=torch.int64)
    for ids, features in blocks:
        ids_t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        for start in range(0, len(ids_t), chunk_rows):
            part = features[start : start + chunk_rows]
            chunk = torch.from_numpy(np.asarray(part)) if unit else unit_rows(part)  # (C, D)
            sims = (q.to(chunk.dtype) @ chunk.T).float()  # (Q, C)
            top, at = sims.topk(min(k, sims.shape[1]), dim=1)
            scores = torch.cat([best_scores, top], dim=1)
            cand = torch.cat([best_ids, ids_t[start : start + chunk_rows][at]], dim=1)
            best_scores, at = scores.topk(k, dim=1)  # sorted, largest first
            best_ids = cand.gather(1, at)
    return Neighbours(best_ids.numpy(), best_scores.numpy().astype(np.float32))


def unit_half(features: np.ndarray | torch.Tensor) -> npt.NDArray[np.float16]:
    """(N, D) -> float16 unit rows, to keep in memory for ``nearest(..., unit=True)``."""
    out: npt.NDArray[np.float16] = unit_rows(features).half().numpy()
    return out


@torch.no_grad()
def k_center(
    features: np.ndarray | torch.Tensor, k: int, *, centres: np.ndarray | torch.Tensor | None = None, first: int = 0
) -> npt.NDArray[np.int64]:
    """Greedy k-center on cosine distance: ``k`` row indices of ``features`` (N, D) in pick order,
    each the row farthest from the ``centres`` (e.g. the labelled images' features, (M, D)) and the
    rows picked before it. Without centres the first pick is row ``first``. Ties go to the lowest
    index, so the result is deterministic. Cost: k passes of N x D."""
    return _k_center(unit_rows(features), k, centres, first)[0]


def diverse_scores(
    features: np.ndarray | torch.Tensor, k: int, *, centres: np.ndarray | torch.Tensor | None = None
) -> npt.NDArray[np.float64]:
    """A score per row for a "diverse first" order: the ``k`` greedy k-center picks score 1 to 2 in
    pick order (first highest); every other row its cosine distance to the nearest pick or centre,
    halved (0 to 1), so after the picks the rows the picks cover worst come first."""
    x = unit_rows(features)
    picks, far = _k_center(x, k, centres, 0)
    scores: npt.NDArray[np.float64] = (far.clamp(0, 2) / 2).double().numpy()
    scores[picks] = 1 + (len(picks) - np.arange(len(picks))) / max(len(picks), 1)
    return scores


def _k_center(
    x: torch.Tensor, k: int, centres: np.ndarray | torch.Tensor | None, first: int
) -> tuple[npt.NDArray[np.int64], torch.Tensor]:
    """(picks, each row's distance to its nearest pick or centre, after the picks)."""
    n = len(x)
    k = max(min(k, n), 0)
    far = torch.full((n,), float("inf"))  # each row's cosine distance to its nearest centre
    if centres is not None and len(centres):
        c = unit_rows(centres)
        for start in range(0, len(c), 4096):
            far = torch.minimum(far, (1 - x @ c[start : start + 4096].T).min(dim=1).values)
    picks = np.empty(k, dtype=np.int64)
    if k == 0:
        return picks, far
    pick = first if not torch.isfinite(far).all() else int(torch.argmax(far))
    for i in range(k):
        picks[i] = pick
        far = torch.minimum(far, 1 - x @ x[pick])
        far[pick] = -1.0  # never again, even when every row is a copy of a centre
        pick = int(torch.argmax(far))
    far[picks] = 0.0
    return picks, far


def hybrid_order(
    features: np.ndarray | torch.Tensor,
    uncertainty: np.ndarray,
    k: int,
    *,
    centres: np.ndarray | torch.Tensor | None = None,
    pool_factor: int = 4,
) -> npt.NDArray[np.int64]:
    """Uncertainty mixed with diversity: the ``pool_factor * k`` most uncertain rows, then greedy
    k-center among them (away from the ``centres``), so a batch is not k copies of one hard case.
    Returns ``k`` row indices in pick order."""
    u = np.asarray(uncertainty, dtype=np.float64)
    pool = np.argsort(-u, kind="stable")[: max(k * pool_factor, k)]
    x = features[pool] if isinstance(features, torch.Tensor) else np.asarray(features)[pool]
    # Begin with the most uncertain row of the pool when nothing is labelled yet.
    picked = k_center(x, k, centres=centres, first=0)
    return pool[picked].astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Near-duplicates


@torch.no_grad()
def similar_pairs(
    ids: np.ndarray, features: np.ndarray | torch.Tensor, *, threshold: float, chunk_rows: int | None = None
) -> npt.NDArray[np.int64]:
    """(P, 2) pairs of ids (first < second) whose cosine similarity is at least ``threshold``,
    comparing ``chunk_rows`` rows with all the others at a time (memory chunk_rows x N; by default
    about 64 M scores, 256 MB). Exact, so O(N^2 D): minutes at 200,000 images on two cores."""
    x = unit_rows(features)
    ids = np.asarray(ids, dtype=np.int64)
    chunk_rows = chunk_rows or max(1, 2**26 // max(len(x), 1))
    out = [np.zeros((0, 2), dtype=np.int64)]
    for start in range(0, len(x), chunk_rows):
        sims = x[start : start + chunk_rows] @ x.T  # (C, N)
        rows, cols = torch.nonzero(sims >= threshold, as_tuple=True)
        rows = rows + start
        keep = rows < cols  # each pair once, never a row with itself
        pairs = np.stack([ids[rows[keep].numpy()], ids[cols[keep].numpy()]], axis=1)
        out.append(pairs)
    return np.concatenate(out)


def group_pairs(ids: np.ndarray, pairs: np.ndarray) -> npt.NDArray[np.int64]:
    """Union-find over ``pairs`` of ``ids``: (N,) the group of each id, named by its smallest id;
    an id in no pair is its own group."""
    ids = np.asarray(ids, dtype=np.int64)
    index = {int(i): n for n, i in enumerate(ids)}
    parent = list(range(len(ids)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]  # path halving
            a = parent[a]
        return a

    for a, b in np.asarray(pairs, dtype=np.int64).reshape(-1, 2).tolist():
        ra, rb = root(index[a]), root(index[b])
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the root is the smallest index, hence the smallest id once sorted
    roots = np.array([root(n) for n in range(len(ids))], dtype=np.int64)
    smallest: dict[int, int] = {}
    for n, r in enumerate(roots.tolist()):
        smallest[r] = min(smallest.get(r, int(ids[n])), int(ids[n]))
    return np.array([smallest[r] for r in roots.tolist()], dtype=np.int64)


def duplicate_groups(
    ids: np.ndarray, features: np.ndarray | torch.Tensor, *, threshold: float
) -> npt.NDArray[np.int64]:
    """(N,) group of each id (its smallest member's id) for near-duplicates at ``threshold``."""
    return group_pairs(ids, similar_pairs(ids, features, threshold=threshold))


# The near-duplicate rule's thresholds (labeling/curation.py says how they were measured).
DUPLICATE_FEATURE_CANDIDATES = 0.95  # a candidate pair: features at this cosine or above ...
DUPLICATE_VIEW_CANDIDATES = 0.85  # ... or grid views at this one ...
DUPLICATE_CANDIDATES_PER_IMAGE = 10  # the best candidates of each kind kept per image (a group is closed transitively)
DUPLICATE_PIXEL_THRESHOLD = 0.94  # ... is a duplicate when its pixels correlate this well (aligned_similarity)
PIXEL_SIDE = 32  # the pixels are compared at 32 px (the CPU preset's cache; larger caches are shrunk)
GRID_SIDE = 8  # candidate search: 8 x 8 grey views ...
# ... of the whole image and of 92 % and 85 % crops at nine places: a crop of an image (80-95 % of it
# anywhere) lines up with one of its views closely enough at 8 x 8 to be a candidate.
GRID_VIEWS = ((1.0, 0.5, 0.5),) + tuple(
    (s, cx, cy) for s in (0.92, 0.85) for cx in (0.0, 0.5, 1.0) for cy in (0.0, 0.5, 1.0)
)
ALIGN_SCALES = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75)  # the confirmation: one image shrunk to these ...
# ... and slid over the other at every 1 px shift (both ways round); the best correlation counts.


def small_pixels(images: np.ndarray) -> torch.Tensor:
    """(N, R, R, 3) uint8 -> uint8 (N, 3, PIXEL_SIDE, PIXEL_SIDE) (area-averaged when R differs): 3 KB an image."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if x.shape[-1] != PIXEL_SIDE:
        x = torch.nn.functional.interpolate(x.float(), size=(PIXEL_SIDE, PIXEL_SIDE), mode="area").round().byte()
    return x.contiguous()


def _centred_unit(v: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(v - v.mean(-1, keepdim=True), dim=-1)


@torch.no_grad()
def grid_views(pixels: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """(N, 3, S, S) uint8 -> (N, V, GRID_SIDE**2) centred unit grey views (GRID_VIEWS; the whole image first)."""
    side = pixels.shape[-1]
    out = []
    for start in range(0, len(pixels), chunk):
        x = pixels[start : start + chunk].float()
        grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
        views = []
        for scale, cx, cy in GRID_VIEWS:
            w = max(2, round(scale * side))
            x0, y0 = round(cx * (side - w)), round(cy * (side - w))
            part = torch.nn.functional.interpolate(
                grey[:, :, y0 : y0 + w, x0 : x0 + w], size=(GRID_SIDE,) * 2, mode="area"
            )
            views.append(_centred_unit(part.flatten(1)))
        out.append(torch.stack(views, 1))
    return torch.cat(out) if out else torch.zeros((0, len(GRID_VIEWS), GRID_SIDE**2))


@torch.no_grad()
def view_pairs(
    views: torch.Tensor, *, threshold: float, most: int | None = None, chunk_rows: int | None = None
) -> npt.NDArray[np.int64]:
    """(P, 2) row pairs (first < second) where one image's first view matches any view of the other
    at ``threshold`` or above (cosine), at most the ``most`` best of each image's matches (so images
    that all look alike cannot make N^2 pairs). Exact: N x (N V) products, ``chunk_rows`` rows at a time."""
    n, v, d = views.shape
    keys = views.reshape(n * v, d)
    chunk_rows = chunk_rows or max(1, 2**25 // max(n * v, 1))
    most = min(most or n, n)
    out = [np.zeros((0, 2), dtype=np.int64)]
    for start in range(0, n, chunk_rows):
        sims = (views[start : start + chunk_rows, 0] @ keys.T).reshape(-1, n, v).amax(2)  # (C, N)
        sims[torch.arange(len(sims)), torch.arange(start, start + len(sims))] = -2.0  # never a row with itself
        top, cols = sims.topk(most, dim=1)
        rows, at = torch.nonzero(top >= threshold, as_tuple=True)
        a, b = (rows + start).numpy(), cols[rows, at].numpy()
        out.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
    return np.unique(np.concatenate(out), axis=0)


@torch.no_grad()
def aligned_similarity(a: torch.Tensor, b: torch.Tensor, *, chunk: int = 256) -> npt.NDArray[np.float32]:
    """(P, 3, S, S) uint8 twice -> (P,) the best normalised cross-correlation of each pair's RGB pixels when
    one is shrunk to each of ALIGN_SCALES, or cut to its middle at that scale, and slid over the other
    (both ways round). 1 for the same image; about 0.95 and more for a JPEG re-encode, a colour or
    brightness shift, a crop of it resized back, or a shifted frame.
    Per pair and scale: the correlation with the centred, unit template is one grouped convolution,
    and each window's spread comes from box sums of the pixels and of their squares."""
    f = torch.nn.functional
    side = a.shape[-1]
    best = torch.full((len(a),), -1.0)
    for start in range(0, len(a), chunk):
        # Centred once: a correlation does not change when a constant is taken off the pixels, and the
        # box sums below lose less to cancellation.
        pa, pb = (p[start : start + chunk].float() for p in (a, b))
        pa, pb = (p - p.mean((1, 2, 3), keepdim=True) for p in (pa, pb))
        n = len(pa)
        top = best[start : start + chunk]
        for scale in ALIGN_SCALES:
            w = max(4, round(scale * side))
            at = (side - w) // 2
            for big, small in ((pa, pb),) if w == side else ((pa, pb), (pb, pa)):
                sums = f.avg_pool2d(big.sum(1, keepdim=True), w, stride=1)[:, 0] * (w * w)
                squares = f.avg_pool2d((big * big).sum(1, keepdim=True), w, stride=1)[:, 0] * (w * w)
                spread = (squares - sums * sums / (3 * w * w)).clamp_min(1e-6).sqrt()  # |window - its mean|
                # The other image shrunk to w (a crop, resized back) and its middle w x w (a shift);
                # at full size both are the image itself.
                shrunk = f.interpolate(small, size=(w, w), mode="area")
                for template in (shrunk,) if w == side else (shrunk, small[:, :, at : at + w, at : at + w]):
                    unit = _centred_unit(template.reshape(n, -1)).view(n, 3, w, w)
                    dot = f.conv2d(big.reshape(1, n * 3, side, side), unit, groups=n)[0]  # (n, L, L)
                    top = torch.maximum(top, (dot / spread).flatten(1).amax(1))
        best[start : start + chunk] = top
    return best.clamp(max=1.0).numpy().astype(np.float32)


@torch.no_grad()
def duplicate_candidates(
    features: np.ndarray | torch.Tensor,
    pixels: torch.Tensor,
    seen: np.ndarray,
    *,
    feature_candidates: float = DUPLICATE_FEATURE_CANDIDATES,
    view_candidates: float = DUPLICATE_VIEW_CANDIDATES,
    view_max: int,
) -> npt.NDArray[np.int64]:
    """(P, 2) row pairs worth confirming: features at ``feature_candidates`` or above, and (up to
    ``view_max`` images with pixels) grid views at ``view_candidates`` or above; each image's
    DUPLICATE_CANDIDATES_PER_IMAGE best of either kind."""
    x = unit_rows(features)[:, None, :]
    parts = [view_pairs(x, threshold=feature_candidates, most=DUPLICATE_CANDIDATES_PER_IMAGE)]
    with_pixels = np.flatnonzero(seen)
    if 0 < len(with_pixels) <= view_max:
        views = grid_views(pixels[with_pixels])
        parts.append(with_pixels[view_pairs(views, threshold=view_candidates, most=DUPLICATE_CANDIDATES_PER_IMAGE)])
    return np.unique(np.concatenate(parts).reshape(-1, 2), axis=0)


@torch.no_grad()
def near_duplicate_groups(
    ids: np.ndarray,
    features: np.ndarray | torch.Tensor,
    *,
    threshold: float,
    pixels: torch.Tensor | None = None,
    seen: np.ndarray | None = None,
    pixel_threshold: float = DUPLICATE_PIXEL_THRESHOLD,
    feature_candidates: float = DUPLICATE_FEATURE_CANDIDATES,
    view_candidates: float = DUPLICATE_VIEW_CANDIDATES,
    view_max: int | None = None,
) -> npt.NDArray[np.int64]:
    """(N,) group of each id. Candidates (duplicate_candidates) whose images both have pixels
    (``pixels`` (N, 3, S, S) uint8 from small_pixels, ``seen`` (N,) which rows are real) are
    duplicates when aligned_similarity reaches ``pixel_threshold``; the others, when their features'
    cosine reaches ``threshold`` (duplicate_groups' rule, all there is without pixels). The grid
    views are searched for up to ``view_max`` images with pixels (default: all of them)."""
    ids = np.asarray(ids, dtype=np.int64)
    if pixels is None:
        return duplicate_groups(ids, features, threshold=threshold)
    seen = np.ones(len(ids), bool) if seen is None else np.asarray(seen, bool)
    x = unit_rows(features)
    pairs = duplicate_candidates(
        x,
        pixels,
        seen,
        feature_candidates=min(threshold, feature_candidates),
        view_candidates=view_candidates,
        view_max=len(ids) if view_max is None else view_max,
    )
    a, b = pairs[:, 0], pairs[:, 1]
    both = seen[a] & seen[b]
    keep = np.zeros(len(pairs), bool)
    if both.any():
        keep[both] = aligned_similarity(pixels[a[both]], pixels[b[both]]) >= pixel_threshold
    if (~both).any():
        keep[~both] = (x[a[~both]] * x[b[~both]]).sum(1).numpy() >= threshold
    return group_pairs(ids, ids[pairs[keep]])


# ---------------------------------------------------------------------------------------------
# Likely mistakes


@dataclass(frozen=True)
class Mistakes:
    score: npt.NDArray[np.float64]  # (N,) 1 - the lowest self-confidence: higher is likelier a mistake
    label: npt.NDArray[np.int64]  # (N,) the column of that label (-1 when no label was scored)
    given: npt.NDArray[np.bool_]  # (N,) whether the person gave that label (True) or left it out


def self_confidence(labels: np.ndarray, oof: np.ndarray) -> npt.NDArray[np.float64]:
    """(N, L) 0/1 human labels and out-of-fold probabilities -> (N, L) the probability of what the
    person said: p where the label was given, 1 - p where it was left out; NaN where p is NaN
    (a label the probe did not train)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(oof, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ")
    out: npt.NDArray[np.float64] = np.where(y > 0.5, p, 1 - p)
    return out


def likely_mistakes(labels: np.ndarray, oof: np.ndarray) -> Mistakes:
    """Each image's most doubtful label: the one whose self-confidence is lowest, and the score
    1 - that confidence. Labels with a NaN probability are skipped."""
    conf = self_confidence(labels, oof)
    n = len(conf)
    if conf.size == 0:
        return Mistakes(np.zeros(n), np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=bool))
    filled = np.where(np.isnan(conf), np.inf, conf)
    column = filled.argmin(axis=1)
    lowest = filled[np.arange(n), column]
    scored = np.isfinite(lowest)
    score = np.where(scored, 1 - lowest, 0.0)
    given = np.asarray(labels)[np.arange(n), column] > 0.5
    return Mistakes(score, np.where(scored, column, -1).astype(np.int64), given & scored)


# ---------------------------------------------------------------------------------------------
# Rare labels


def rare_label_scores(
    probs: np.ndarray, positives: np.ndarray, trained: np.ndarray | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """For an order that favours images likely to hold labels with few positives: per image the
    largest p(label) x w(label), w = (1 + fewest positives) / (1 + positives) (the rarest trained
    label weighs 1, a label with ten times its examples about a tenth), and that label's column
    (-1 when no label is trained). ``probs`` (N, L), ``positives`` (L,)."""
    p = np.asarray(probs, dtype=np.float64)
    pos = np.asarray(positives, dtype=np.float64)
    usable = np.ones(p.shape[1], bool) if trained is None else np.asarray(trained, bool)
    if not usable.any() or len(p) == 0:
        return np.zeros(len(p)), np.full(len(p), -1, dtype=np.int64)
    w = np.where(usable, (1 + pos[usable].min()) / (1 + pos), 0.0)
    weighted = np.nan_to_num(p) * w
    column = weighted.argmax(axis=1).astype(np.int64)
    return weighted[np.arange(len(p)), column], column
