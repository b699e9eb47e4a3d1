"""The annotation domain's events for the outside world (annotator/extensions.py event_emit): each is
emitted once, from its write, with what a receiver needs; nothing knows who listens."""

import dataclasses

import pytest

from annotator import extensions
from annotator.exports import ExportOptions, export_job_run
from annotator.models import ExportJob, Image
from annotator.services.annotations import image_submit
from annotator.services.reviews import review_accept, review_reject

pytestmark = pytest.mark.team(images=2)


@pytest.fixture
def heard(monkeypatch):
    events: list[tuple[int, str, dict]] = []
    monkeypatch.setattr(
        extensions, "EVENT_LISTENERS", [lambda *, project_id, event, data: events.append((project_id, event, data))]
    )
    return events


def test_submit_and_review_are_announced(team, heard):
    first, second = (Image.objects.get(pk=i) for i in team.ids)
    image_submit(image=first, user=team.annotator, version=first.version)
    image_submit(image=second, user=team.annotator, version=second.version)
    first.refresh_from_db()
    second.refresh_from_db()
    review_accept(image=first, user=team.reviewer, version=first.version)
    review_reject(image=second, user=team.reviewer, version=second.version, comment="the dog is a cat")
    assert [(e, d.get("decision")) for _, e, d in heard] == [
        ("image.submitted", None),
        ("image.submitted", None),
        ("image.reviewed", "accepted"),
        ("image.reviewed", "rejected"),
    ]
    assert heard[0][0] == team.project.id and heard[0][2]["image_id"] == first.id
    assert heard[0][2]["submitted_by"] == "annie" and heard[3][2]["comment"] == "the dog is a cat"


def test_an_export_job_is_announced_when_its_file_is_ready(team, heard):
    options = ExportOptions(format="csv", status="all")
    job = ExportJob.objects.create(project=team.project, created_by=team.owner, options=dataclasses.asdict(options))
    export_job_run(job_id=job.id)
    [(project_id, event, data)] = heard
    assert (project_id, event, data["job_id"], data["format"]) == (team.project.id, "export.ready", job.id, "csv")
    assert data["size_bytes"] > 0
