"""Inter-annotator agreement, pure (no ORM): boxes matched by IoU give an F1; tags give a Jaccard index.
And which images the overlap sample holds, deterministically by id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# (label_id, x, y, w, h) in image pixels
Box = tuple[int, float, float, float, float]
_HASH = 2654435761  # Knuth's multiplicative hash: spreads consecutive ids evenly over the sample


def in_overlap_sample(image_id: int, fraction: float) -> bool:
    """Whether the image is one of the ``fraction`` labeled twice. Stable: the same images stay in
    the sample as the project grows, and raising the fraction only adds images."""
    return (image_id * _HASH) % 1000 < round(fraction * 1000)


def iou(a: Box, b: Box) -> float:
    _, ax, ay, aw, ah = a
    _, bx, by, bw, bh = b
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (aw * ah + bw * bh - inter)


def box_f1(a: Sequence[Box], b: Sequence[Box], *, threshold: float = 0.5) -> float:
    """F1 of one annotator's boxes against the other's: a pair matches when both have the same label
    and IoU >= threshold; pairs are taken greedily, highest IoU first, each box at most once.
    Symmetric; 1.0 when neither drew a box (they agree nothing is there)."""
    if not a and not b:
        return 1.0
    pairs = sorted(((iou(p, q), i, j) for i, p in enumerate(a) for j, q in enumerate(b) if p[0] == q[0]), reverse=True)
    used_a: set[int] = set()
    used_b: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < threshold:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return 2 * len(used_a) / (len(a) + len(b))


def tag_jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """|A ∩ B| / |A ∪ B| of the two tag sets; 1.0 when both are empty."""
    a, b = set(a), set(b)
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
