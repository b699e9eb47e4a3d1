"""The Twinlabel Django site and the annotation domain."""

# The Celery app is loaded with Django so that @shared_task binds to it and .delay() works.
from annotator.celery import app as celery_app

__all__ = ("celery_app",)
