from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Model-assisted labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import worker_ready

        worker_ready.connect(_resume_orphans, weak=False, dispatch_uid="labeling.resume_orphans")


def _resume_orphans(sender, **kwargs) -> None:
    from labeling.pipeline import resume_orphans

    resume_orphans(sender.hostname)
