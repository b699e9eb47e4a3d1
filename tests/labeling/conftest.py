import pytest


@pytest.fixture
def eager_tasks(settings, tmp_path):
    """Celery tasks run in-process as they are queued, with run files under this test's folder."""
    from twinlabel.celery import app

    settings.MODEL_DIR = tmp_path / "models"
    app.set_current()
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
