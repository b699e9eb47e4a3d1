"""Constraints hold in the database itself (on PostgreSQL in CI), not only in Python."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from annotator.models import Box, Image, ImageTag, LabelClass, Membership
from tests.factories import add_images, image_row, make_project, make_user

pytestmark = pytest.mark.django_db


def _violates():
    """Run the callable in its own savepoint and expect the database to refuse it."""

    def check(action):
        with pytest.raises(IntegrityError), transaction.atomic():
            action()

    return check


@pytest.fixture
def image():
    project = make_project()
    return Image.objects.get(pk=add_images(project, 1)[0])


def test_it_runs_on_postgresql_when_required(need):
    need(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    assert connection.vendor == "postgresql"


def test_label_names_are_unique_per_project_ignoring_case(image):
    project = image.project
    check = _violates()
    check(lambda: LabelClass.objects.create(project=project, name="CAT"))
    other = make_project(owner=make_user("x"), name="other", labels=())
    LabelClass.objects.create(project=other, name="cat")  # another project may reuse the name


def test_label_hotkeys_are_unique_per_project_but_may_be_blank(image):
    project = image.project
    _violates()(lambda: LabelClass.objects.create(project=project, name="bird", hotkey="1"))
    LabelClass.objects.create(project=project, name="bird", hotkey="")
    LabelClass.objects.create(project=project, name="fish", hotkey="")


def test_boxes_need_a_positive_size_and_an_origin_inside(image):
    label = image.project.labels.first()
    for bad in ({"w": 0, "h": 5}, {"w": 5, "h": -1}, {"x": -1}, {"y": -0.5}):
        values = {"x": 1, "y": 1, "w": 5, "h": 5, **bad}
        _violates()(lambda values=values: Box.objects.create(image=image, label=label, **values))
    _violates()(lambda: Box.objects.create(image=image, label=label, x=1, y=1, w=1, h=1, source="robot"))
    Box.objects.create(image=image, label=label, x=0, y=0, w=0.5, h=0.5)


def test_an_image_has_each_tag_once(image):
    label = image.project.labels.first()
    ImageTag.objects.create(image=image, label=label)
    _violates()(lambda: ImageTag.objects.create(image=image, label=label))


def test_images_are_unique_by_content_within_a_project(image):
    def copy():
        row = image_row(image.project, 0, folder="copy", size=(1, 1), size_bytes=1)
        row.sha256 = image.sha256  # another file, the same content
        row.save()

    _violates()(copy)


def test_image_fields_are_checked(image):
    _violates()(lambda: Image.objects.filter(pk=image.pk).update(status="lost"))
    _violates()(lambda: Image.objects.filter(pk=image.pk).update(width=0))
    _violates()(lambda: Image.objects.filter(pk=image.pk).update(status="submitted", submitted_at=None))
    _violates()(lambda: Image.objects.filter(pk=image.pk).update(version=0))


def test_a_user_has_one_role_per_project(image):
    owner = image.project.created_by
    _violates()(lambda: Membership.objects.create(user=owner, project=image.project, role="annotator"))
    _violates()(lambda: Membership.objects.create(user=make_user("y"), project=image.project, role="king"))


def test_a_label_in_use_cannot_be_deleted_with_its_boxes(image):
    label = image.project.labels.first()
    Box.objects.create(image=image, label=label, x=0, y=0, w=2, h=2)
    with pytest.raises(ProtectedError):
        label.delete()
