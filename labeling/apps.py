from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Model-assisted labeling"

    def ready(self) -> None:
        from celery.signals import worker_process_init, worker_ready

        worker_ready.connect(_resume_orphans, weak=False, dispatch_uid="labeling.resume_orphans")
        worker_process_init.connect(_worker_threads, weak=False, dispatch_uid="labeling.worker_threads")
        worker_process_init.connect(_warm_up, weak=False, dispatch_uid="labeling.warm_up")
        from annotator.sweep import register
        from labeling.sweep import runs_sweep

        register("runs", runs_sweep)
        _extend_the_annotation_domain()


def _extend_the_annotation_domain() -> None:
    """What the annotation domain asks of model assistance (annotator/extensions.py says when each
    is called): the model's queue and list orders, predictions in exports, the runs and suggestions a
    project deletion removes, and counting submissions towards a refit."""
    from annotator import extensions
    from labeling.services import submission_noted

    extensions.image_ranker_register("uncertain", _rank_uncertain)
    extensions.image_ranker_register("label", _rank_suggested)
    extensions.image_ranker_register("diverse", _rank_diverse)
    extensions.image_ranker_register("hybrid", _rank_hybrid)
    extensions.image_ranker_register("mistakes", _rank_mistakes)
    extensions.image_ranker_register("rare", _rank_rare)
    extensions.prediction_source_register(_predictions)
    extensions.box_prediction_source_register(_box_predictions)
    extensions.project_dependent_register(
        extensions.ProjectDependent(counts=_project_counts, files_delete=_project_files_delete)
    )
    extensions.submission_listener_register(submission_noted)


def _probe_run_id(project_id: int) -> int | None:
    from labeling.models import ProjectModelState

    return ProjectModelState.objects.filter(project_id=project_id).values_list("probe_run_id", flat=True).first()


def _rank_uncertain(*, project_id: int, images, arg: int | None):
    """The most uncertain images first: the current probe's rows (tag doubt raised to box doubt by
    each detector fit, labeling/detection.py), or the detector's own while there is no probe."""
    from django.db.models import F

    from labeling.runs import current_detector_run_id

    run_id = _probe_run_id(project_id) or current_detector_run_id(project_id=project_id)
    if run_id is None:
        return None
    return images.filter(uncertainties__run_id=run_id).annotate(score=F("uncertainties__score"))


def _rank_suggested(*, project_id: int, images, arg: int | None):
    """Images the current probe suggests label ``arg`` for, or the current detector suggests a box
    of it on, likeliest first (labeling.selectors.suggested_as). With no detector, the probe's rows
    by a join (the index run, label, -probability serves the order)."""
    from django.db.models import F

    from labeling.runs import current_detector_run_id
    from labeling.selectors import suggested_as

    run_id = _probe_run_id(project_id)
    if run_id is not None and current_detector_run_id(project_id=project_id) is None:
        return images.filter(
            suggestions__run_id=run_id, suggestions__label_id=arg, suggestions__predicted=True
        ).annotate(score=F("suggestions__probability"))
    found = suggested_as(project_id=project_id, label_id=arg)
    if found is None:
        return None
    where, score = found
    return images.filter(where).annotate(score=score)


def _rank_curated(images, run_id: int | None, kind: str):
    from django.db.models import F

    if run_id is None:
        return None
    return images.filter(curation_scores__run_id=run_id, curation_scores__kind=kind).annotate(
        score=F("curation_scores__score")
    )


def _rank_diverse(*, project_id: int, images, arg: int | None):
    """Diverse first: greedy k-center on the current backbone's embeddings (labeling/curation.py)."""
    from labeling.runs import current_backbone_run_id

    return _rank_curated(images, current_backbone_run_id(project_id=project_id), "diverse")


def _rank_hybrid(*, project_id: int, images, arg: int | None):
    """The current probe's uncertain images, picked apart by k-center so a batch is not one case."""
    return _rank_curated(images, _probe_run_id(project_id), "hybrid")


def _rank_mistakes(*, project_id: int, images, arg: int | None):
    """Submitted images whose labels the current probe's out-of-fold scores doubt most."""
    return _rank_curated(images, _probe_run_id(project_id), "mistake")


def _rank_rare(*, project_id: int, images, arg: int | None):
    """Images likeliest to hold a label with few positives (the current probe's, weighted)."""
    return _rank_curated(images, _probe_run_id(project_id), "rare")


def _predictions(*, project_id: int, min_probability: float):
    from labeling.models import Suggestion

    run_id = _probe_run_id(project_id)
    if run_id is None:
        return None

    def rows(low: int, high: int):
        return (
            Suggestion.objects.filter(
                run_id=run_id, image_id__gte=low, image_id__lte=high, probability__gte=min_probability
            )
            .order_by("image_id", "-probability")
            .values_list("image_id", "label_id", "probability")
        )

    return rows


def _box_predictions(*, project_id: int, min_score: float):
    from labeling.models import BoxSuggestion
    from labeling.runs import current_detector_run_id

    run_id = current_detector_run_id(project_id=project_id)
    if run_id is None:
        return None

    def rows(low: int, high: int):
        return (
            BoxSuggestion.objects.filter(run_id=run_id, image_id__gte=low, image_id__lte=high, score__gte=min_score)
            .order_by("image_id", "-score")
            .values_list("image_id", "label_id", "x", "y", "w", "h", "score")
        )

    return rows


def _project_counts(*, project_id: int) -> dict[str, int]:
    from labeling.models import Suggestion, TrainingRun

    return {
        "runs": TrainingRun.objects.filter(project_id=project_id).count(),
        "suggestions": Suggestion.objects.filter(run__project_id=project_id).count(),
    }


def _project_files_delete(*, project_id: int):
    """The project's runs and image cache under MODEL_DIR; the run ids are read now, before the rows go."""
    import shutil
    from pathlib import Path

    from django.conf import settings

    from labeling.models import TrainingRun

    run_ids = list(TrainingRun.objects.filter(project_id=project_id).values_list("id", flat=True))

    def delete() -> None:
        model_dir = Path(settings.MODEL_DIR)
        for path in [model_dir / "runs" / str(run_id) for run_id in run_ids] + [
            model_dir / "cache" / f"project-{project_id}"
        ]:
            shutil.rmtree(path, ignore_errors=True)

    return delete


def _resume_orphans(sender, **kwargs) -> None:
    from labeling.config import note_worker_device
    from labeling.tasks import resume_orphans

    note_worker_device()
    resume_orphans(sender.hostname)


def _worker_threads(**kwargs) -> None:
    # Torch's threads are per process and default to every core: on a host shared with the web,
    # the trainer then took the web's core too (settings.TRAIN_THREADS says why and how many).
    import torch
    from django.conf import settings

    torch.set_num_threads(settings.TRAIN_THREADS)


def _warm_up(**kwargs) -> None:
    # Import torch and the model code when a worker process starts, not inside the first task:
    # the first refit after a submission then takes seconds, not seconds plus torch's import.
    import labeling.ml.active  # noqa: F401
    import labeling.ml.embed  # noqa: F401
    import labeling.ml.probe  # noqa: F401
