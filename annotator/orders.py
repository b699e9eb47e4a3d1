"""Image orders, defined once: the names the annotation queue and the image list accept, and the one
function that puts images in an order (both call it)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from annotator import extensions

# "label:<id>" too: images the model suggests that label for, likeliest first.
# "diverse": greedy k-center on the embeddings (a cold start); "hybrid": the uncertain ones, picked
# apart by k-center; "mistakes" (submitted images, for review): labels the model doubts most first.
# "rare": images likeliest to hold a label with few positives.
QUEUE_ORDERS = ("sequential", "random", "uncertain", "diverse", "hybrid", "rare")
LIST_ORDERS = ("id", "uncertain", "diverse", "hybrid", "mistakes", "rare")
REVIEW_ORDERS = ("oldest", "mistakes")
# When a model order has served everything it ranks (or has no ranking yet), the queue goes on in these.
QUEUE_FALLBACKS = {
    "uncertain": ("sequential",),
    "diverse": ("sequential",),
    "hybrid": ("uncertain", "sequential"),
    "rare": ("uncertain", "sequential"),
}


def queue_order_valid(order: str) -> bool:
    return order in QUEUE_ORDERS or (order.startswith("label:") and order[6:].isdigit())


@dataclass(frozen=True)
class Ordered:
    images: QuerySet  # in the order
    keys: tuple[str, ...]  # its keyset, as order_by fields: ("id",) or ("-score", "id")


def images_ordered(images: QuerySet, *, project_id: int, order: str) -> Ordered | None:
    """``images`` in ``order``: "id" (the queue's "sequential") by id; a model order ("uncertain",
    "diverse", "hybrid", "mistakes", "label:<id>") by the registered ranker, cut to the images it ranks, most first, ties by id.
    None when the order has no ranking (no model yet). "random" is the queue's own (a random pivot)."""
    if order in ("id", "sequential"):
        return Ordered(images.order_by("id"), ("id",))
    name, _, arg = order.partition(":")
    ranker = extensions.IMAGE_RANKERS.get(name)
    ranked = ranker(project_id=project_id, images=images, arg=int(arg) if arg else None) if ranker else None
    if ranked is None:
        return None
    return Ordered(ranked.order_by("-score", "id"), ("-score", "id"))
