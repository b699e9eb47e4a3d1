import pytest

from tests.factories import make_scene_project, make_user

# A pretraining small enough for a test: seconds on a CPU.
TINY = {"resolution": 16, "epochs": 2, "batch_size": 8, "projector": [64], "warmup_epochs": 0}


@pytest.fixture
def project():
    """A scene project (tests.factories.make_scene_project) owned by "owner"."""
    return make_scene_project(owner=make_user("owner"))


@pytest.fixture
def eager_tasks(settings, tmp_path):
    """Celery tasks run in-process as they are queued, with run files under this test's folder."""
    from twinlabel.celery import app

    settings.MODEL_DIR = tmp_path / "models"
    app.set_current()
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
