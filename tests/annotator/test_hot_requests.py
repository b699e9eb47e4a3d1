"""The three requests every annotator makes per image (queue next, PUT annotations, submit) stay
within a fixed number of queries (issue 20: bench/load.py's hot path, profiled in
bench/results/hot_requests_*.json). The counts are those of a steady state (counter rows exist),
including the session and user lookups."""

import pytest

from annotator.models import Image, Role
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def annotating(client):
    owner, annotator = make_user("owner"), make_user("ann")
    project = make_project(owner=owner)
    add_member(project, annotator, Role.ANNOTATOR)
    add_images(project, 6)
    client.force_login(annotator)
    cat, dog = project.labels.order_by("id").values_list("id", flat=True)
    return client, project, cat, dog


def _one_image(client, project, cat, dog) -> tuple[dict, dict, dict]:
    nxt = client.post(f"/api/projects/{project.id}/queue/next/", {}, content_type="application/json")
    image = nxt.json()["image"]["image"]
    put = client.put(
        f"/api/images/{image['id']}/annotations/",
        {"version": image["version"], "tags": [dog], "boxes": [{"label": cat, "x": 1, "y": 1, "w": 3, "h": 3}]},
        content_type="application/json",
    )
    submit = client.post(
        f"/api/images/{image['id']}/submit/",
        {"version": put.json()["image"]["version"]},
        content_type="application/json",
    )
    assert (nxt.status_code, put.status_code, submit.status_code) == (200, 200, 200)
    return nxt.json()["image"], put.json(), submit.json()


def test_the_hot_requests_stay_within_their_query_counts(annotating, django_assert_max_num_queries):
    client, project, cat, dog = annotating
    _one_image(client, project, cat, dog)  # the counter rows of this thread's shard now exist
    nxt = client.post(f"/api/projects/{project.id}/queue/next/", {}, content_type="application/json")
    image = nxt.json()["image"]["image"]
    # Each answer shows the image's boxes and tags (one UNION query) and the model's "still learning" line
    # (issue 13's abstain), read with the current runs: one query each, where both were two.
    with django_assert_max_num_queries(9):  # was 12, then 10; the role rides on the project's row
        nxt_again = client.post(f"/api/projects/{project.id}/queue/next/", {}, content_type="application/json")
    assert nxt_again.json()["image"]["image"]["id"] == image["id"]  # a reload resumes the held image
    # PUT: 21 before issue 20; 2 fewer (no re-read of the image, no second fetch of its project), 2 more for the
    # box counters (the old boxes' labels, the counter row); then 22 -> 20 as above (boxes + tags, note + runs);
    # then 20 -> 16: the role rides on the image's row, the old boxes' labels come with their sources,
    # and an image that had no boxes or no tags is not sent a DELETE; 16 -> 15: the answer shows the rows
    # written instead of reading them back; 15 -> 13: the versioned write takes no savepoint of its own
    # (here, inside the test's transaction, the service's outer block is a savepoint too); 13 -> 12: the
    # write assumes the status it read (no SELECT ... FOR UPDATE unless that misses).
    with django_assert_max_num_queries(12):
        put = client.put(
            f"/api/images/{image['id']}/annotations/",
            {"version": image["version"], "tags": [dog], "boxes": [{"label": cat, "x": 1, "y": 1, "w": 3, "h": 3}]},
            content_type="application/json",
        )
    # submit: 18 before issue 20; no re-read, no second fetch of the project; then 17 -> 15 as above;
    # then 15 -> 13: the role on the image's row, both status counters in one UPDATE ... RETURNING;
    # 13 -> 11: no savepoint of the versioned write's own; 11 -> 10: no SELECT of the status.
    with django_assert_max_num_queries(10):
        client.post(
            f"/api/images/{image['id']}/submit/",
            {"version": put.json()["image"]["version"]},
            content_type="application/json",
        )


def test_the_answers_show_what_was_written_without_a_re_read(annotating):
    client, project, cat, dog = annotating
    nxt, put, submit = _one_image(client, project, cat, dog)
    row = Image.objects.get(pk=nxt["image"]["id"])
    assert nxt["image"]["status"] == "in_progress" and nxt["image"]["version"] == 1
    assert put["image"]["status"] == "in_progress" and put["image"]["version"] == 2
    assert [(b["label"], b["w"]) for b in put["boxes"]] == [(cat, 3.0)] and put["tags"][0]["label"] == dog
    assert (submit["image"]["status"], submit["image"]["version"]) == (row.status, row.version) == ("submitted", 3)


def test_the_model_notes_and_both_current_runs_come_from_one_query(annotating, django_assert_num_queries):
    """The annotate state's model line is the newest finished probe's "still learning" message, read in
    the same query as the current runs; a newer fit that speaks no line clears it."""
    from labeling.models import ProjectModelState, RunKind, RunStatus, TrainingRun
    from labeling.selectors import current_model_view

    client, project, cat, dog = annotating
    assert current_model_view(project_id=project.id) == (None, None, None, None)
    pretrain = TrainingRun.objects.create(project=project, kind=RunKind.PRETRAIN, status=RunStatus.SUCCEEDED)
    line = "the model is still learning: 4 more labels of dog would help"
    probe = TrainingRun.objects.create(
        project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED, metrics={"trust": {"still_learning": line}}
    )
    TrainingRun.objects.create(project=project, kind=RunKind.PROBE, status=RunStatus.FAILED, metrics={})
    ProjectModelState.objects.create(project=project, pretrain_run=pretrain, probe_run=probe)
    with django_assert_num_queries(1):
        assert current_model_view(project_id=project.id) == (probe.id, None, line, None)
    nxt = client.post(f"/api/projects/{project.id}/queue/next/", {}, content_type="application/json")
    assert nxt.json()["image"]["model_note"] == line
    TrainingRun.objects.create(project=project, kind=RunKind.PROBE, status=RunStatus.SUCCEEDED, metrics={"trust": {}})
    assert current_model_view(project_id=project.id) == (probe.id, None, None, None)
    # The current detector's box note, in the same query.
    boxes = "No suggested boxes yet: ..."
    detector = TrainingRun.objects.create(
        project=project, kind=RunKind.DETECTOR, status=RunStatus.SUCCEEDED, metrics={"trust": {"box_note": boxes}}
    )
    ProjectModelState.objects.filter(project=project).update(detector_run=detector)
    with django_assert_num_queries(1):
        assert current_model_view(project_id=project.id) == (probe.id, detector.id, None, boxes)
    nxt = client.post(f"/api/projects/{project.id}/queue/next/", {}, content_type="application/json")
    assert nxt.json()["image"]["box_note"] == boxes
    # An external import's box trust is under "boxes"; its own "trust" judges its tags and has no box note.
    imported_note = "No suggested boxes yet: imported"
    imported = TrainingRun.objects.create(
        project=project,
        kind=RunKind.EXTERNAL,
        status=RunStatus.SUCCEEDED,
        metrics={"trust": {"labels": []}, "boxes": {"trust": {"box_note": imported_note}}},
    )
    ProjectModelState.objects.filter(project=project).update(detector_run=imported)
    with django_assert_num_queries(1):
        assert current_model_view(project_id=project.id) == (probe.id, imported.id, None, imported_note)
