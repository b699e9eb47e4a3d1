"""The queue serves one image per near-duplicate group (annotator/services/duplicates.py), unless
the project turns it off; labeling's duplicates_write hands the groups over."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from annotator.models import Image, ImageStatus
from annotator.services.duplicates import images_duplicate_groups_set, project_set_queue_duplicates
from annotator.services.queue import queue_next

pytestmark = [pytest.mark.django_db, pytest.mark.team(images=6)]


def _served(team, order="sequential"):
    """Every image the queue hands out, in turn (each skipped so the next call moves on)."""
    out = []
    while (image := queue_next(project=team.project, user=team.annotator, order=order)) is not None:
        Image.objects.filter(pk=image.pk).update(status=ImageStatus.SKIPPED, locked_by=None)
        out.append(image.id)
    return out


def test_it_serves_one_image_per_group(team):
    a, b, c, d, e, f = team.ids
    hidden = images_duplicate_groups_set(project_id=team.project.id, groups=[(b, b), (d, b), (e, b), (c, c), (f, c)])
    assert hidden == 3
    assert dict(Image.objects.filter(project=team.project).values_list("id", "duplicate_of")) == {
        a: None, b: None, c: None, d: b, e: b, f: c,
    }  # fmt: skip
    assert _served(team) == [a, b, c]


def test_it_serves_one_per_group_in_random_order_too(team):
    a, b, c, d, e, f = team.ids
    images_duplicate_groups_set(project_id=team.project.id, groups=[(a, a), (b, a), (c, a), (d, a), (e, a)])
    assert sorted(_served(team, "random")) == [a, f]


def test_it_serves_every_image_when_the_project_turns_it_off(team):
    a, b, *_ = team.ids
    images_duplicate_groups_set(project_id=team.project.id, groups=[(a, a), (b, a)])
    project_set_queue_duplicates(project=team.project, one_per_group=False)
    assert _served(team) == team.ids


def test_new_groups_replace_the_old_ones(team):
    a, b, c, *_ = team.ids
    images_duplicate_groups_set(project_id=team.project.id, groups=[(a, a), (b, a)])
    images_duplicate_groups_set(project_id=team.project.id, groups=[(b, b), (c, b)])
    assert set(Image.objects.filter(duplicate_of__isnull=False).values_list("id", "duplicate_of")) == {(c, b)}
    assert images_duplicate_groups_set(project_id=team.project.id, groups=()) == 0
    assert not Image.objects.filter(duplicate_of__isnull=False).exists()


def test_an_image_the_user_already_holds_is_resumed_even_if_it_is_now_a_duplicate(team):
    a, b, *_ = team.ids
    Image.objects.filter(project=team.project).exclude(pk=b).update(
        status=ImageStatus.SUBMITTED, submitted_at="2026-01-01T00:00Z"
    )
    held = queue_next(project=team.project, user=team.annotator)
    assert held.id == b
    images_duplicate_groups_set(project_id=team.project.id, groups=[(a, a), (b, a)])
    assert queue_next(project=team.project, user=team.annotator).id == b


def test_duplicates_write_hands_the_groups_to_the_queue(team, settings, tmp_path):
    from labeling.curation import duplicates_write
    from tests.factories import embeddings

    settings.MODEL_DIR = tmp_path / "models"
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 32))
    x[4] = x[1] + rng.normal(scale=0.01, size=32)  # near copies of image 1
    x[5] = x[1] + rng.normal(scale=0.01, size=32)
    duplicates_write(backbone_run_id=embeddings(team.project, team.ids, x).id)
    ids = team.ids
    assert _served(team) == [ids[0], ids[1], ids[2], ids[3]]


def test_an_admin_turns_it_off_and_on_on_the_project_page(client, team):
    url = reverse("project_settings", args=[team.project.id])
    client.force_login(team.owner)
    assert 'id="duplicates-form"' in client.get(reverse("project_detail", args=[team.project.id])).content.decode()
    client.post(url, {"queue_duplicates": "1"})
    team.project.refresh_from_db()
    assert team.project.queue_one_per_duplicate_group is False
    client.post(url, {"queue_duplicates": "1", "one_per_group": "on"})
    team.project.refresh_from_db()
    assert team.project.queue_one_per_duplicate_group is True
    client.force_login(team.annotator)
    assert client.post(url, {"queue_duplicates": "1"}).status_code == 403
    team.project.refresh_from_db()
    assert team.project.queue_one_per_duplicate_group is True
