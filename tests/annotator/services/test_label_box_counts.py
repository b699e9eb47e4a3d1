"""Boxes per label are counters the services keep (like the status counts): after saves, label
changes, removals, annotation imports and an overlap first pass they equal a count of the box table,
and the dashboard reads them instead of grouping that table."""

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db.models import Count

from annotator.models import Box, Image, LabelBoxCount
from annotator.selectors import label_box_counts
from annotator.services.annotations import BoxIn, ImageAnnotations, annotation_save, annotations_import, image_submit
from annotator.services.status_counts import label_box_counts_recount
from twinlabel.web.dashboard import label_counts
from tests.factories import add_images, make_project, make_user

pytestmark = pytest.mark.django_db


def _counted(project_id):
    return dict(
        Box.objects.filter(label__project_id=project_id).values_list("label_id").annotate(n=Count("id")).order_by()
    )


def _kept(project_id):
    return {label: n for label, n in label_box_counts(project_id=project_id).items() if n}


def _save(image_id, user, boxes):
    image = Image.objects.get(pk=image_id)
    annotation_save(
        image=image,
        user=user,
        version=image.version,
        tag_label_ids=[],
        boxes=[BoxIn(label_id=label, x=1, y=1, w=3, h=3) for label in boxes],
    )


def test_it_keeps_the_box_counters_equal_to_a_count_through_every_box_write():
    owner, _other = make_user("owner"), make_user("other")
    project = make_project(owner=owner)
    cat, dog = project.labels.order_by("id").values_list("id", flat=True)
    ids = add_images(project, 4)
    steps = []

    def check(what):
        steps.append(what)
        assert _kept(project.id) == _counted(project.id), steps

    _save(ids[0], owner, [cat, cat, dog])
    check("save adds boxes")
    _save(ids[0], owner, [dog, dog])
    check("save changes labels and removes a box")
    _save(ids[1], owner, [cat])
    _save(ids[1], owner, [])
    check("save removes every box")
    annotations_import(
        project=project,
        user=owner,
        items=[
            ImageAnnotations(image_id=ids[0], boxes=(BoxIn(cat, 0, 0, 2, 2),)),
            ImageAnnotations(image_id=ids[2], boxes=(BoxIn(dog, 0, 0, 2, 2),) * 4),
        ],
    )
    check("annotation import replaces and adds")
    assert _kept(project.id) == {cat: 1, dog: 4}
    project.overlap_fraction = 1.0  # every image: the first pass empties the image for someone else
    project.save()
    _save(ids[3], owner, [cat, dog])
    image = Image.objects.get(pk=ids[3])
    image_submit(image=image, user=owner, version=image.version)
    check("overlap first pass empties the image")
    assert _kept(project.id) == {cat: 1, dog: 4}


def test_the_dashboard_reads_the_counters_not_the_box_table():
    owner = make_user("owner")
    project = make_project(owner=owner)
    cat, _ = project.labels.order_by("id").values_list("id", flat=True)
    ids = add_images(project, 2)
    _save(ids[0], owner, [cat, cat])
    # A box written behind the services' back is not counted until a recount: proof of what is read.
    Box.objects.create(image_id=ids[1], label_id=cat, x=0, y=0, w=1, h=1)
    assert {r["label"]: r["boxes"] for r in label_counts(project_id=project.id, probe_run_id=None)}[cat] == 2
    label_box_counts_recount(project_id=project.id)
    assert {r["label"]: r["boxes"] for r in label_counts(project_id=project.id, probe_run_id=None)}[cat] == 3


def test_the_recount_command_repairs_box_counters_that_drifted():
    owner = make_user("owner")
    project = make_project(owner=owner)
    cat, dog = project.labels.order_by("id").values_list("id", flat=True)
    ids = add_images(project, 2)
    _save(ids[0], owner, [cat, dog, dog])
    LabelBoxCount.objects.filter(label_id=dog).update(count=17)
    out = StringIO()
    call_command("recount_statuses", str(project.id), stdout=out)
    assert _kept(project.id) == {cat: 1, dog: 2}
    assert "corrected {%d: -15}" % dog in out.getvalue()


def test_the_migration_counts_the_boxes_a_database_already_has():
    from importlib import import_module

    migration = import_module("annotator.migrations.0011_label_box_counts")
    owner = make_user("owner")
    project = make_project(owner=owner)
    cat, dog = project.labels.order_by("id").values_list("id", flat=True)
    _save(add_images(project, 1)[0], owner, [cat, dog, dog])
    LabelBoxCount.objects.all().delete()  # as before the migration
    migration.count_existing_boxes(apps, None)
    assert _kept(project.id) == {cat: 1, dog: 2}


def test_it_spreads_a_label_over_shard_rows_and_sums_them(monkeypatch, settings):
    from annotator.services import status_counts
    from annotator.services.status_counts import label_box_counts_change

    settings.STATUS_COUNT_SHARDS = 4
    project = make_project()
    cat, _ = project.labels.order_by("id").values_list("id", flat=True)
    for ident in range(8):
        monkeypatch.setattr(status_counts.threading, "get_ident", lambda ident=ident: ident)
        label_box_counts_change(changes={cat: 3})
    assert LabelBoxCount.objects.filter(label_id=cat).count() > 1
    assert label_box_counts(project_id=project.id)[cat] == 24
