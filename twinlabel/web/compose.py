"""Where one request shows both apps' data: the annotation domain's and model assistance's. The only
module besides the site's settings and URLs that imports both, so that neither app imports the other
for a page's sake (annotator never imports labeling; see docs/architecture.md)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Subquery

from annotator import selectors
from annotator.paging import Page
from annotator.models import Image
from labeling.models import ProjectModelState, Suggestion
from labeling.selectors import current_run_ids, image_box_suggestions, image_suggestions, model_note


def annotation_state(*, image: Image) -> dict:
    """What the annotate page needs of one image (docs/annotate-api.md): the annotation domain's state
    with the current model's suggestions, the detector's box suggestions and the model's note, in the answer's documented key order."""
    state = selectors.annotation_state(image=image)
    review = state.pop("review")
    probe_run_id, detector_run_id = current_run_ids(project_id=image.project_id)
    return {
        **state,
        "suggestions": image_suggestions(image=image, run_id=probe_run_id),
        "box_suggestions": image_box_suggestions(image=image, run_id=detector_run_id),
        "model_note": model_note(project_id=image.project_id),
        "review": review,
    }


def image_list(*, project_id: int, suggested_label: int | None = None, **filters) -> Page:
    """annotator.selectors.image_list (its ``filters``), and ``suggested_label``: only images the
    current probe suggests that label for (none before the first probe)."""
    where = None
    if suggested_label is not None:
        probe_run = ProjectModelState.objects.filter(project_id=project_id).values("probe_run_id")[:1]
        where = Exists(
            Suggestion.objects.filter(
                run_id=Subquery(probe_run), image=OuterRef("pk"), label_id=suggested_label, predicted=True
            )
        )
    return selectors.image_list(project_id=project_id, where=where, **filters)
