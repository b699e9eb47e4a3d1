"""An empty project guides its admin: add labels, add images, label, what the model does and when."""

import pytest
from django.urls import reverse

from annotator.models import Role
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def _page(client, user, project) -> str:
    client.force_login(user)
    return client.get(reverse("project_detail", args=[project.id])).content.decode()


def test_it_guides_the_admin_of_an_empty_project_and_ticks_off_what_is_done(client, settings):
    settings.PROBE_REFIT_EVERY = 7
    owner, annie = make_user("owner"), make_user("annie")
    project = make_project(owner=owner, labels=())
    add_member(project, annie, Role.ANNOTATOR)
    page = _page(client, owner, project)
    assert 'id="getting-started"' in page and "Add labels" in page and "After every 7 submitted images" in page
    assert 'class="done"' not in page
    assert 'id="getting-started"' not in _page(client, annie, project)  # only admins can act on it
    with_labels = make_project(owner=owner, labels=("cat",), name="Half")
    page = _page(client, owner, with_labels)
    assert page.count('class="done"') == 1 and "Done: </span>" in page  # labels done, images to come
    add_images(with_labels, 1)
    assert 'id="getting-started"' not in _page(client, owner, with_labels)
