"""annotator.compiled: a query compiled once answers as the ORM answers, for every argument kind,
on whichever database the run uses (CI runs this file on PostgreSQL and on SQLite)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotator.access import project_for
from annotator.compiled import Compiled, row_update
from annotator.models import Image, ImageStatus, LabelClass, Membership, Project, Role
from tests.factories import add_images, make_project, make_user

pytestmark = pytest.mark.django_db


def _labels(project_id):
    return LabelClass.objects.filter(project_id=project_id).values_list("id", "name", "attributes")


LABELS = Compiled(_labels, {"project_id": "int"})


def test_rows_are_the_orms_for_each_new_argument():
    one, two = make_project(labels=("a", "b")), make_project(owner=make_user("o2"), labels=("c",), name="Two")
    LabelClass.objects.filter(project=one, name="a").update(attributes=[{"name": "size", "type": "number"}])
    for project in (one, two, one):
        assert LABELS.rows(project_id=project.id) == list(_labels(project.id))
    assert LABELS.rows(project_id=10**9) == []
    assert LABELS.rows(project_id=one.id)[0][2] == [{"name": "size", "type": "number"}]  # JSON converted


def test_it_compiles_once_and_then_sends_only_the_query():
    project = make_project()
    labels = Compiled(_labels, {"project_id": "int"})
    labels.rows(project_id=project.id)
    with CaptureQueriesContext(connection) as queries:
        labels.rows(project_id=project.id)
    assert len(queries) == 1 and str(project.id) in queries[0]["sql"]
    assert len(labels._plans) == 1


def _images(project_id, exclude, status, since, name):
    images = Image.objects.filter(project_id=project_id).order_by("id")
    if exclude is not None:
        images = images.exclude(pk__in=exclude)
    if status is not None:
        images = images.filter(status=status)
    if since is not None:
        images = images.filter(locked_until__gt=since)
    if name is not None:
        images = images.filter(original_name=name)
    return images.select_related("project")


IMAGES = Compiled(_images, {"project_id": "int", "exclude": "ids", "status": "str", "since": "datetime", "name": "str"})


def test_instances_shapes_lists_datetimes_and_strings_answer_as_the_orm():
    project = make_project()
    ids = add_images(project, 5)
    now = timezone.now()
    Image.objects.filter(pk__in=ids[:2]).update(status=ImageStatus.IN_PROGRESS, locked_until=now + timedelta(minutes=5))
    Image.objects.filter(pk=ids[2]).update(status=ImageStatus.IN_PROGRESS, locked_until=now - timedelta(minutes=5))
    cases = [
        {"exclude": None, "status": None, "since": None, "name": None},
        {"exclude": [], "status": None, "since": None, "name": None},
        {"exclude": [ids[0]], "status": None, "since": None, "name": None},
        {"exclude": ids[:3], "status": None, "since": None, "name": None},
        {"exclude": None, "status": ImageStatus.IN_PROGRESS, "since": None, "name": None},
        {"exclude": None, "status": ImageStatus.IN_PROGRESS, "since": now, "name": None},
        {"exclude": [ids[1]], "status": ImageStatus.IN_PROGRESS, "since": now, "name": None},
        {"exclude": None, "status": ImageStatus.UNLABELED, "since": None, "name": None},
        {"exclude": None, "status": None, "since": None, "name": "img-3.png"},
    ]
    for case in cases:
        got = IMAGES.instances(project_id=project.id, **case)
        want = list(_images(project.id, **case))
        assert [i.pk for i in got] == [i.pk for i in want], case
        for g, w in zip(got, want):
            assert (g.status, g.locked_until, g.original_name, g.version) == (
                w.status,
                w.locked_until,
                w.original_name,
                w.version,
            )
            assert g.project.name == w.project.name  # select_related populated, no query
            assert g._state.adding is False and g._state.db == "default"


def test_an_annotation_lands_on_the_instance():
    owner = make_user("owner")
    project = make_project(owner=owner)
    annotator = make_user("ann")
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    for user, role in ((owner, Role.ADMIN), (annotator, Role.ANNOTATOR)):
        got, got_role = project_for(user=user, project_id=project.id)
        assert got.pk == project.pk and got_role == role and got.member_role == role


def test_an_argument_that_does_not_reach_the_sql_is_refused():
    ignored = Compiled(lambda project_id: LabelClass.objects.all(), {"project_id": "int"})
    with pytest.raises(ValueError, match="project_id"):
        ignored.rows(project_id=1)


def test_row_update_writes_what_the_orms_update_writes_and_counts_rows():
    project = make_project()
    user = make_user("ann")
    [image_id] = add_images(project, 1)
    image = Image.objects.get(pk=image_id)
    until = timezone.now() + timedelta(minutes=3)
    changes = {"status": ImageStatus.IN_PROGRESS, "locked_by": user, "locked_until": until, "work_seconds": 1.5}
    where = {"pk": image_id, "version": image.version, "status": ImageStatus.UNLABELED}
    assert row_update(Image, where, changes, increment=("version",)) == 1
    image.refresh_from_db()
    assert (image.status, image.locked_by_id, image.locked_until, image.work_seconds, image.version) == (
        ImageStatus.IN_PROGRESS,
        user.pk,
        until,
        1.5,
        where["version"] + 1,
    )
    assert row_update(Image, where, changes, increment=("version",)) == 0  # stale version and status: no row
    cleared = {"locked_by": None, "locked_until": None, "work_seconds": None, "status": ImageStatus.SKIPPED}
    assert row_update(Image, {"pk": image_id, "version": image.version}, cleared, increment=("version",)) == 1
    image.refresh_from_db()
    assert (image.locked_by_id, image.locked_until, image.work_seconds, image.status) == (None, None, None, "skipped")
    # A boolean field has no stand-in both databases agree on: the ORM writes it.
    assert row_update(Project, {"pk": project.pk}, {"queue_one_per_duplicate_group": False}) == 1
    assert Project.objects.get(pk=project.pk).queue_one_per_duplicate_group is False


LABEL = Compiled(lambda label_id: LabelClass.objects.filter(pk=label_id).values_list("id"), {"label_id": "int"})


def test_ids_no_column_can_hold_answer_as_the_orm_does():
    # A fuzzer's id (tests/integration/test_api_fuzz.py): the ORM answers "no rows" where the drivers
    # refuse the parameter (SQLite: too large; psycopg: an Int4 that overflows).
    project = make_project()
    for huge in (2**31, -(2**31) - 1, 3669016580339938372488427594579968):
        assert LABEL.rows(label_id=huge) == []
        assert row_update(Image, {"pk": huge, "version": 1}, {"status": ImageStatus.SKIPPED}) == 0
        with pytest.raises(Http404):
            project_for(user=project.created_by, project_id=huge)
