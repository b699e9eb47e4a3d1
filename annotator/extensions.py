"""Where model assistance plugs into the annotation domain.

The annotation domain never imports ``labeling``; where one of its writes or reads needs data only
model assistance has (the probe's rankings and predictions, the runs a project owns, counting
submissions towards a refit), it calls what was registered here. ``labeling`` registers its
callables in ``LabelingConfig.ready()``; with nothing registered the domain works alone (no model
orders, no predictions in exports, nothing else to delete). Explicit calls, not Django signals: each
point is called at one known place (named below), in the caller's transaction, and its answer is
used (a signal's receivers are found only by searching, and their answers are thrown away).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

# ---------------------------------------------------------------------------------------------
# Image orders the model provides ("uncertain", "label:<id>"): annotator.orders.images_ordered


ImageRanker = Callable[..., "QuerySet | None"]
"""``ranker(*, project_id: int, images: QuerySet[Image], arg: int | None) -> QuerySet | None``:
``images`` cut to those the order ranks, annotated with ``score`` (higher first; the caller orders by
``-score, id``); ``arg`` is the ``<id>`` of an order written ``name:<id>``. None when there is no
ranking yet (no model)."""

IMAGE_RANKERS: dict[str, ImageRanker] = {}


def image_ranker_register(name: str, ranker: ImageRanker) -> None:
    """Provide the order ``name`` (or ``name:<id>``) for the queue and the image list."""
    IMAGE_RANKERS[name] = ranker


# ---------------------------------------------------------------------------------------------
# Predictions in exports: annotator.exports.export_records


PredictionRows = Callable[[int, int], Iterable[tuple[int, int, float]]]
"""``rows(low_image_id, high_image_id)``: (image id, label id, probability) of the images in that id
range, by image id then probability (highest first)."""

PredictionSource = Callable[..., "PredictionRows | None"]
"""``source(*, project_id: int, min_probability: float) -> PredictionRows | None``: the current
model's predictions of at least ``min_probability``; None when there is no model. Called once per
export, before the first batch; the rows callable once per batch."""

PREDICTION_SOURCES: list[PredictionSource] = []


BoxPredictionRows = Callable[[int, int], Iterable[tuple[int, int, float, float, float, float, float]]]
"""``rows(low_image_id, high_image_id)``: (image id, label id, x, y, w, h, score) of the suggested
boxes of the images in that id range (image pixels), by image id then score (highest first)."""

BoxPredictionSource = Callable[..., "BoxPredictionRows | None"]
"""``source(*, project_id: int, min_score: float) -> BoxPredictionRows | None``: the current
detector's boxes of at least ``min_score``; None when there is no detector. Called as PredictionSource."""

BOX_PREDICTION_SOURCES: list[BoxPredictionSource] = []


def box_prediction_source_register(source: BoxPredictionSource) -> None:
    BOX_PREDICTION_SOURCES.append(source)


def prediction_source_register(source: PredictionSource) -> None:
    """Provide the predictions exports carry (one source; a second replaces the first)."""
    PREDICTION_SOURCES[:] = [source]


# ---------------------------------------------------------------------------------------------
# What else a project owns: annotator.services.deletion


@dataclass(frozen=True)
class ProjectDependent:
    """Rows and files another app keeps for a project. Its rows go with the project's row (their
    foreign keys cascade, in the same transaction); these say what they are and remove the files."""

    counts: Callable[..., dict[str, int]]
    """``counts(*, project_id: int) -> {what: n}``, for the confirmation that names what a deletion
    removes; listed after the project's members, in this dict's order."""

    files_delete: Callable[..., Callable[[], None]]
    """``files_delete(*, project_id: int) -> callable``: called before the rows go (it may read them to
    find the files); what it returns runs once the deletion commits and deletes the files."""


PROJECT_DEPENDENTS: list[ProjectDependent] = []


def project_dependent_register(dependent: ProjectDependent) -> None:
    PROJECT_DEPENDENTS.append(dependent)


# ---------------------------------------------------------------------------------------------
# Submissions: annotator.services.annotations.image_submit


SubmissionListener = Callable[..., object]
"""``listener(*, project_id: int, image_id: int)``: an image of the project was submitted for the first time
(not a re-submission of an edited image). Called inside the submit's transaction, after the
versioned write: a listener that raises rolls the submission back, and one that queues work must
use ``transaction.on_commit``."""

SUBMISSION_LISTENERS: list[SubmissionListener] = []


def submission_listener_register(listener: SubmissionListener) -> None:
    SUBMISSION_LISTENERS.append(listener)


# ---------------------------------------------------------------------------------------------
# Events for the world outside (webhooks): image submitted and reviewed (annotator/services/),
# export ready (annotator/exports.py); labeling emits its runs' and suggestions' events the same way.

EVENTS = ("image.submitted", "image.reviewed", "run.finished", "export.ready", "suggestions.refreshed")

EventListener = Callable[..., object]
"""``listener(*, project_id: int, event: str, data: dict)``: called inside the writer's transaction
(where there is one); it must do nothing slow there and send its work with ``transaction.on_commit``,
so an event never slows the request nor announces a write that rolls back."""
EVENT_LISTENERS: list[EventListener] = []


def event_listener_register(listener: EventListener) -> None:
    EVENT_LISTENERS.append(listener)


def event_emit(*, project_id: int, event: str, data: dict) -> None:
    for listener in EVENT_LISTENERS:
        listener(project_id=project_id, event=event, data=data)
