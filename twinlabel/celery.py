"""The Celery app. Two queues: ``default`` for quick work and ``gpu`` for training on the GPU worker
(concurrency 1). Settings come from Django's (``CELERY_*``), so one settings module rules both."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinlabel.settings")

app = Celery("twinlabel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
