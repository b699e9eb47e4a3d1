"""What a real (tiny, eager) pretraining leaves for the dashboard: TensorBoard events, a profiler
trace when asked, the embedding map's projection; and who may download them."""

from __future__ import annotations

import pytest

from annotator.models import Image, Role
from labeling import services
from labeling.models import RunKind, RunStatus, TrainingRun
from labeling.paths import run_file
from tests.factories import add_member, make_scene_project, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]
TINY = {"resolution": 16, "epochs": 2, "batch_size": 8, "projector": [64], "warmup_epochs": 0, "profile": True}


@pytest.fixture
def trained():
    owner = make_user("owner")
    project = make_scene_project(owner=owner)
    run = services.pretrain_start(project=project, config=TINY)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return project, owner, run


def test_a_run_leaves_tensorboard_events_a_trace_and_a_projection(trained, client):
    project, owner, run = trained
    client.force_login(owner)
    detail = client.get(f"/api/runs/{run.id}/").json()
    kinds = sorted(f["kind"] for f in detail["files"])
    assert set(kinds) == {"tensorboard", "trace"}  # events of the training and of its probe(s)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_file(run.id, "tensorboard")))
    events.Reload()
    assert {"train/loss", "train/lr", "train/images_per_s", "probe/map"} <= set(events.Tags()["scalars"])
    trace = next(f for f in detail["files"] if f["kind"] == "trace")
    response = client.get(trace["url"])
    assert response.status_code == 200 and b"traceEvents" in b"".join(response.streaming_content)
    assert client.get(f"/runs/{run.id}/files/checkpoint.pt").status_code == 404
    assert client.get(f"/runs/{run.id}/files/../../secret").status_code == 404


def test_run_files_are_for_project_admins(trained, client):
    project, owner, run = trained
    member, outsider = make_user("ann"), make_user("out")
    add_member(project, member, Role.ANNOTATOR)
    url = f"/runs/{run.id}/files/trace.json"
    client.force_login(member)
    assert client.get(url).status_code == 403
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_the_embedding_map_pages_by_keyset_and_colours_every_image(trained, client):
    project, owner, run = trained
    client.force_login(owner)
    first = client.get(f"/api/projects/{project.id}/embedding-map/?limit=25").json()
    assert first["total"] == 40 and first["sampled"] == 40 and len(first["points"]) == 25
    rest = client.get(f"/api/projects/{project.id}/embedding-map/?limit=25&after={first['next_after']}").json()
    assert rest["next_after"] is None and len(rest["points"]) == 15
    points = first["points"] + rest["points"]
    assert sorted(p[0] for p in points) == sorted(Image.objects.filter(project=project).values_list("id", flat=True))
    kinds = {p[3] for p in points}
    assert "human" in kinds and kinds <= {"human", "suggested", "unlabeled", "skipped"}
    assert all(p[4] is not None for p in points if p[3] in ("human", "suggested"))
    probe = TrainingRun.objects.get(project=project, kind=RunKind.PROBE)
    data = client.get(f"/api/projects/{project.id}/dashboard/").json()
    assert data["suggestion_quality"]["probe_run"] == probe.id
    assert next(r for r in data["runs"] if r["id"] == run.id)["probe"]["labeled"] == 20
