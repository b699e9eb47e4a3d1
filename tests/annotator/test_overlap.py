"""Overlap: a set fraction of images is labeled by two annotators independently; agreement per pair."""

import pytest
from django.urls import reverse

from annotator import selectors
from annotator.agreement import in_overlap_sample
from annotator.services.annotations import annotation_save, image_submit
from annotator.services.queue import queue_next
from annotator.models import AnnotationSnapshot, Image, Role
from annotator.services.annotations import BoxIn

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=6)]


@pytest.fixture
def bob(team):
    """A second annotator, for the second pass."""
    return team.add_member("bob", Role.ANNOTATOR)


def _label(image_id, user, boxes, tags):
    image = Image.objects.select_related("project").get(pk=image_id)
    annotation_save(image=image, user=user, version=image.version, boxes=boxes, tag_label_ids=tags)
    image = Image.objects.select_related("project").get(pk=image_id)
    image_submit(image=image, user=user, version=image.version)
    return Image.objects.get(pk=image_id)


def test_an_overlap_image_goes_back_empty_for_someone_else_then_is_submitted(team, bob):
    project, owner, annie, ids, cat, dog = team.project, team.owner, team.annotator, team.ids, team.cat, team.dog
    project.overlap_fraction = 1.0
    project.save()
    first = _label(ids[0], annie, [BoxIn(cat.id, 10, 10, 20, 20)], [dog.id])
    assert first.status == "unlabeled" and first.overlap_first_by == annie
    assert not first.boxes.exists() and not first.tags.exists()  # the second annotator starts from nothing
    # The queue never hands it back to annie, but does hand it to bob.
    held = [queue_next(project=project, user=annie, exclude=[]).id]
    for _ in range(4):
        held.append(queue_next(project=project, user=annie, exclude=held).id)
    assert ids[0] not in held
    assert queue_next(project=project, user=bob).id == ids[0]
    second = _label(ids[0], bob, [BoxIn(cat.id, 11, 10, 20, 20), BoxIn(dog.id, 50, 50, 10, 10)], [dog.id, cat.id])
    assert second.status == "submitted" and second.submitted_by == bob
    snapshots = list(AnnotationSnapshot.objects.values_list("pass_number", "annotator__username", "tags"))
    assert snapshots == [(1, "annie", [dog.id]), (2, "bob", sorted([cat.id, dog.id]))]
    # Later edits are ordinary: no third pass.
    third = _label(ids[0], owner, [], [])
    assert third.status == "submitted" and AnnotationSnapshot.objects.count() == 2


def test_images_outside_the_sample_are_submitted_at_once(team, bob):  # bob: a second annotator exists
    project, annie, ids, cat = team.project, team.annotator, team.ids, team.cat
    assert _label(ids[0], annie, [], [cat.id]).status == "submitted"  # overlap off by default
    project.overlap_fraction = 0.5
    project.save()
    outside = next(i for i in ids[1:] if not in_overlap_sample(i, 0.5))
    assert _label(outside, annie, [], [cat.id]).status == "submitted"
    assert not AnnotationSnapshot.objects.exists()


def test_agreement_per_pair_is_box_f1_and_tag_jaccard(team, bob, client):
    project, owner, annie, ids, cat, dog = team.project, team.owner, team.annotator, team.ids, team.cat, team.dog
    project.overlap_fraction = 1.0
    project.save()
    # Image 0: same box, tags {dog} vs {dog, cat}: F1 1, Jaccard 1/2.
    _label(ids[0], annie, [BoxIn(cat.id, 10, 10, 20, 20)], [dog.id])
    _label(ids[0], bob, [BoxIn(cat.id, 11, 10, 20, 20)], [dog.id, cat.id])
    # Image 1: bob first; boxes of different labels: F1 0; no tags either side: Jaccard 1.
    _label(ids[1], bob, [BoxIn(cat.id, 10, 10, 20, 20)], [])
    _label(ids[1], annie, [BoxIn(dog.id, 10, 10, 20, 20)], [])
    (row,) = selectors.agreement_stats(project_id=project.id)
    assert row == {"annotators": ["annie", "bob"], "images": 2, "box_f1": 0.5, "tag_jaccard": 0.75}
    client.force_login(owner)
    page = client.get(reverse("project_detail", args=[project.id])).content.decode()
    assert "<td>annie, bob</td><td>2</td><td>0.50</td><td>0.75</td>" in page


def test_the_overlap_setting_is_a_percentage_for_admins(team, client):
    project, owner, annie = team.project, team.owner, team.annotator
    client.force_login(owner)
    url = reverse("project_settings", args=[project.id])
    client.post(url, {"overlap_percent": "12.5"})
    project.refresh_from_db()
    assert project.overlap_fraction == 0.125
    for bad in ("150", "-1", "nan", "lots"):
        response = client.post(url, {"overlap_percent": bad}, follow=True)
        assert "percentage from 0 to 100" in response.content.decode()
    project.refresh_from_db()
    assert project.overlap_fraction == 0.125
    client.force_login(annie)
    assert client.post(url, {"overlap_percent": "50"}).status_code == 403
