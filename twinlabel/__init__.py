"""The Twinlabel site: settings, URLs, the Celery app, WSGI. The only package that imports both
apps (``annotator``, the annotation domain; ``labeling``, model assistance); its ``web`` package
holds the pages and the REST API."""

# The Celery app is loaded with Django so that @shared_task binds to it and .delay() works.
from twinlabel.celery import app as celery_app

__all__ = ("celery_app",)
