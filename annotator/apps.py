from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AnnotatorConfig(AppConfig):
    name = "annotator"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from celery.signals import worker_ready

        worker_ready.connect(_start_sweep, weak=False, dispatch_uid="annotator.sweep")
        post_migrate.connect(analyze_sqlite, sender=self)


def _start_sweep(sender, **kwargs) -> None:
    # In the worker's main process (not the pool's children): one sweep thread per worker.
    from django.conf import settings

    from annotator.sweep import start_timer

    if settings.SWEEP_SECONDS:
        start_timer()


def analyze_sqlite(*, using: str = "default", **kwargs) -> None:
    """Statistics for SQLite's planner after every migrate (a new index has none until ANALYZE).
    analysis_limit (settings.py) samples each index, so this is quick at any size; PostgreSQL
    gathers its own (autovacuum)."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
