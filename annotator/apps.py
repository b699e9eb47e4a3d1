from django.apps import AppConfig


class AnnotatorConfig(AppConfig):
    name = "annotator"
    verbose_name = "Annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import worker_ready

        worker_ready.connect(_start_sweep, weak=False, dispatch_uid="annotator.sweep")


def _start_sweep(sender, **kwargs) -> None:
    # In the worker's main process (not the pool's children): one sweep thread per worker.
    from django.conf import settings

    from annotator.sweep import start_timer

    if settings.SWEEP_SECONDS:
        start_timer()
