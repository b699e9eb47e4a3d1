from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Model-assisted labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import worker_process_init, worker_ready

        worker_ready.connect(_resume_orphans, weak=False, dispatch_uid="labeling.resume_orphans")
        worker_process_init.connect(_worker_threads, weak=False, dispatch_uid="labeling.worker_threads")
        worker_process_init.connect(_warm_up, weak=False, dispatch_uid="labeling.warm_up")
        from annotator.sweep import register
        from labeling.sweep import runs_sweep

        register("runs", runs_sweep)


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
