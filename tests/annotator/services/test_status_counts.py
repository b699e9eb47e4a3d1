"""The project page's status counts are counters the services keep: after any mix of imports,
queue claims and releases, saves, submits, skips and annotation imports they equal a recount."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count

from annotator.models import Image, ImageStatus, ProjectStatusCount
from annotator.selectors import project_status_counts
from annotator.services.annotations import BoxIn, ImageAnnotations, annotation_save, annotations_import, image_skip
from annotator.services.annotations import image_submit
from annotator.services.queue import queue_next
from tests.factories import add_images, make_project, make_user

pytestmark = pytest.mark.django_db


def _recount(project_id):
    counts = dict.fromkeys(ImageStatus.values, 0)
    counts.update(Image.objects.filter(project_id=project_id).values_list("status").annotate(n=Count("id")).order_by())
    return {**counts, "total": sum(counts.values())}


def _fresh(image_id):
    return Image.objects.get(pk=image_id)


def test_it_keeps_the_counters_equal_to_a_recount_through_a_mixed_sequence():
    owner, other = make_user("owner"), make_user("other")
    project = make_project(owner=owner)
    cat = project.labels.order_by("id").first()
    ids = add_images(project, 12)
    steps = []

    def check(what):
        steps.append(what)
        assert project_status_counts(project_id=project.id) == _recount(project.id), steps

    check("import")
    add_images(project, 12)  # all duplicates: nothing changes
    check("duplicate import")
    held = queue_next(project=project, user=owner)
    check("claim")
    image_submit(image=held, user=owner, version=held.version)
    check("submit a claimed image")
    again = _fresh(held.id)
    image_submit(image=again, user=owner, version=again.version)
    check("re-submit")
    second = queue_next(project=project, user=other)
    third = queue_next(project=project, user=other, exclude=[second.id], release=[second.id])
    check("release and claim")
    image_skip(image=third, user=other, version=third.version)
    check("skip")
    unlabeled = _fresh(ids[-1])
    annotation_save(
        image=unlabeled,
        user=owner,
        version=unlabeled.version,
        boxes=[BoxIn(label_id=cat.id, x=1, y=1, w=5, h=5)],
        tag_label_ids=[],
    )
    check("save takes an unlabeled image in progress")
    annotations_import(
        project=project,
        user=owner,
        items=[ImageAnnotations(image_id=i, tag_label_ids=(cat.id,)) for i in ids[5:9] + [third.id]],
    )
    check("annotation import over unlabeled, skipped and in-progress images")
    stale = _fresh(ids[6])
    image_skip(image=stale, user=owner, version=stale.version)
    check("skip a submitted image")
    counts = project_status_counts(project_id=project.id)
    assert counts["total"] == 12 and counts["submitted"] >= 5 and counts["skipped"] == 1


def test_it_counts_a_project_with_no_images_as_zeros_in_one_query(django_assert_num_queries):
    project = make_project()
    with django_assert_num_queries(1):
        counts = project_status_counts(project_id=project.id)
    assert counts == {**dict.fromkeys(ImageStatus.values, 0), "total": 0}


def test_the_recount_command_repairs_counters_that_drifted():
    project = make_project()
    ids = add_images(project, 4)
    Image.objects.filter(pk__in=ids[:3]).update(status="skipped")  # raw SQL: bypasses the services
    assert project_status_counts(project_id=project.id)["skipped"] == 0
    out = StringIO()
    call_command("recount_statuses", str(project.id), stdout=out)
    assert project_status_counts(project_id=project.id) == _recount(project.id)
    assert "corrected" in out.getvalue()
    ProjectStatusCount.objects.filter(project=project).delete()
    call_command("recount_statuses", stdout=StringIO())
    assert project_status_counts(project_id=project.id)["skipped"] == 3


def test_it_spreads_a_status_over_shard_rows_and_sums_them_on_read(monkeypatch, settings):
    """Requests in different threads update different rows of the same status (no single hot row);
    the read sums them, and a recount folds them back into one."""
    from annotator.services import status_counts
    from annotator.services.status_counts import status_counts_change, status_counts_recount

    settings.STATUS_COUNT_SHARDS = 4
    project = make_project()
    for ident in range(8):
        monkeypatch.setattr(status_counts.threading, "get_ident", lambda ident=ident: ident)
        status_counts_change(project_id=project.id, changes={"unlabeled": 2, "skipped": 1})
    rows = ProjectStatusCount.objects.filter(project=project)
    assert rows.filter(status="unlabeled").count() > 1  # spread, not one row
    counts = project_status_counts(project_id=project.id)
    assert (counts["unlabeled"], counts["skipped"], counts["total"]) == (16, 8, 24)
    status_counts_recount(project_id=project.id)  # no images: every counter back to zero
    assert project_status_counts(project_id=project.id)["total"] == 0
    assert set(rows.exclude(shard=0).values_list("count", flat=True)) == {0}


def test_a_status_change_moves_both_counters_in_one_update_and_creates_a_missing_row(
    settings, django_assert_num_queries
):
    """Both rows there: one UPDATE ... RETURNING moves them. One missing (the shard's first change of
    that status): the UPDATE moves the other, and the missing one is created with its delta."""
    from annotator.services.status_counts import status_counts_change

    settings.STATUS_COUNT_SHARDS = 1
    project = make_project()
    status_counts_change(project_id=project.id, changes={"unlabeled": 5})  # only this row exists
    with django_assert_num_queries(4):  # UPDATE ... RETURNING; then the missing row: SAVEPOINT, INSERT, RELEASE
        status_counts_change(project_id=project.id, changes={"unlabeled": -2, "in_progress": 2})
    counts = project_status_counts(project_id=project.id)
    assert (counts["unlabeled"], counts["in_progress"], counts["total"]) == (3, 2, 5)
    with django_assert_num_queries(1):  # both rows exist now
        status_counts_change(project_id=project.id, changes={"unlabeled": 1, "in_progress": -1})
    counts = project_status_counts(project_id=project.id)
    assert (counts["unlabeled"], counts["in_progress"], counts["total"]) == (4, 1, 5)
    assert ProjectStatusCount.objects.filter(project=project).count() == 2


def test_a_save_on_a_stale_copy_of_the_status_moves_the_counters_from_the_rows_status():
    """The queue changes an image's status without a version bump: a save made on a copy read before
    that (status unlabeled, same version) must move the counters from the row's status (in progress),
    not from the copy's."""
    owner = make_user("owner")
    project = make_project(owner=owner)
    cat = project.labels.order_by("id").first()
    (image_id,) = add_images(project, 1)
    stale = _fresh(image_id)
    assert stale.status == ImageStatus.UNLABELED
    assert queue_next(project=project, user=owner).pk == image_id  # now in progress, same version
    assert _fresh(image_id).version == stale.version
    image_submit(image=stale, user=owner, version=stale.version)
    assert _fresh(image_id).status == ImageStatus.SUBMITTED
    assert project_status_counts(project_id=project.id) == _recount(project.id)
    annotation_save(
        image=_fresh(image_id),
        user=owner,
        version=_fresh(image_id).version,
        boxes=[BoxIn(cat.id, 1, 1, 2, 2)],
        tag_label_ids=[],
    )
    assert project_status_counts(project_id=project.id) == _recount(project.id)
