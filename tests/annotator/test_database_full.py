"""A database that refuses a write for lack of disk space: the request answers 507 with what to do,
its transaction rolls back whole, and the next request after space is freed goes through. The
refusal is the database's own: on PostgreSQL a trigger raises SQLSTATE 53100 (disk_full) inside the
server, as a full volume would; on SQLite the file may not grow (PRAGMA max_page_count), which is
SQLITE_FULL itself. No Python is patched."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotator.models import Box, Image
from tests.full_disk import FullDisk
from twinlabel.web.api.errors import DATABASE_FULL_MESSAGE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.team(images=2)]


def _save(client, image_id, version, team, boxes):
    body = {
        "version": version,
        "tags": [],
        "boxes": [{"label": team.cat.id, "x": i % 90, "y": i % 70, "w": 5, "h": 5} for i in range(boxes)],
    }
    return client.put(
        reverse("api_image_annotations", args=[image_id]), json.dumps(body), content_type="application/json"
    )


def test_a_save_the_full_database_refuses_answers_507_and_changes_nothing(client, team):
    client.force_login(team.annotator)
    image_id = team.ids[0]
    assert _save(client, image_id, 1, team, boxes=1).status_code == 200
    before = list(Box.objects.filter(image_id=image_id).values_list("id", "x", "y"))
    with FullDisk():
        refused = _save(client, image_id, 2, team, boxes=400)
    assert refused.status_code == 507, refused.content
    assert refused.json() == {"error": DATABASE_FULL_MESSAGE}
    assert list(Box.objects.filter(image_id=image_id).values_list("id", "x", "y")) == before
    assert Image.objects.get(pk=image_id).version == 2  # the refused save did not bump it
    again = _save(client, image_id, 2, team, boxes=400)  # space again: the same request goes through
    assert again.status_code == 200 and Box.objects.filter(image_id=image_id).count() == 400
