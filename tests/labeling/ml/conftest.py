import pytest


@pytest.fixture(autouse=True)
def media_root():
    """labeling.ml never touches Django: override the suite's MEDIA_ROOT fixture so these tests
    also run with ``-p no:django`` (the parent's version needs pytest-django's ``settings``)."""
    return None
