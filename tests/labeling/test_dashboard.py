"""The dashboard's selectors, endpoints and access: figures from SQL aggregates, a fixed number of
queries whatever the size, project admins only (owner / member / outsider)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotator.services.annotations import image_submit
from annotator.services.queue import queue_next
from annotator.models import AnnotationSnapshot, Box, Image, ImageStatus, ImageTag, Review, ReviewStatus
from annotator.services.status_counts import label_box_counts_recount, status_counts_recount
from twinlabel.web import dashboard
from labeling.models import Decision, ProjectModelState, RunKind, RunStatus, Suggestion, SuggestionDecision, TrainingRun
from tests.factories import image_row, make_user, probe_run

pytestmark = pytest.mark.django_db


def _images(project, count: int, *, start: int = 0, **fields) -> list[Image]:
    """Rows only (no files): what the dashboard reads. Inserted behind the services' back, so the
    status counters are recounted, as `manage.py recount_statuses` would."""
    images = Image.objects.bulk_create(
        [
            image_row(
                project,
                start + i,
                folder="f",
                size=(10, 10),
                size_bytes=1,
                **fields,
            )
            for i in range(count)
        ]
    )
    status_counts_recount(project_id=project.id)
    return images


def _populate(project, annotator, n: int, start: int = 0) -> None:
    """n submitted images with a box and a tag, n unlabeled with suggestions, a probe run, decisions."""
    cat, dog = project.labels.order_by("id")
    now = timezone.now()
    done = _images(
        project,
        n,
        start=start,
        status=ImageStatus.SUBMITTED,
        submitted_by=annotator,
        submitted_at=now,
        work_seconds=10.0,
        box_count=1,
        human_tag_count=1,
    )
    Box.objects.bulk_create([Box(image=i, label=cat, x=0, y=0, w=1, h=1, author=annotator) for i in done])
    label_box_counts_recount(project_id=project.id)  # boxes inserted behind the services' back, too
    ImageTag.objects.bulk_create([ImageTag(image=i, label=dog, author=annotator) for i in done])
    open_ = _images(project, n, start=start + n)
    pretrain = TrainingRun.objects.create(
        project=project,
        kind=RunKind.PRETRAIN,
        status=RunStatus.SUCCEEDED,
        config={"epochs": 3, "resolution": 32},
        started_at=now,
        finished_at=now,
    )
    cv = dict(map=0.5, micro_f1=0.6, macro_f1=0.4, labels=["cat", "dog"], ap=[0.7, 0.3], f1=[0.8, 0.2])
    probe = probe_run(pretrain, labeled=n, cv=cv)
    Suggestion.objects.bulk_create(
        [Suggestion(run=probe, image=i, label=cat, probability=0.9, predicted=True) for i in open_[: n // 2]]
    )
    ProjectModelState.objects.update_or_create(project=project, defaults={"pretrain_run": pretrain, "probe_run": probe})
    SuggestionDecision.objects.bulk_create(
        [
            SuggestionDecision(
                image=open_[0], label=cat, run=probe, probability=0.9, decision=Decision.ACCEPTED, user=annotator
            ),
            SuggestionDecision(
                image=open_[1], label=cat, run=probe, probability=0.9, decision=Decision.REJECTED, user=annotator
            ),
        ]
    )


def test_it_counts_progress_labels_and_quality_in_sql(team):
    project, annotator = team.project, team.annotator
    _populate(project, annotator, 6)
    _images(project, 2, start=100, status=ImageStatus.SKIPPED)
    data = dashboard.project_dashboard(project_id=project.id)
    assert data["progress"] == {"submitted": 6, "with_suggestions": 3, "unlabeled": 3, "skipped": 2, "total": 14}
    assert data["submitted_per_day"][-1]["cumulative"] == 6
    cat, dog = project.labels.order_by("id").values_list("id", flat=True)
    counts = {row["label"]: row for row in data["label_counts"]}
    assert (counts[cat]["boxes"], counts[cat]["suggested"], counts[dog]["human_tags"]) == (6, 3, 6)
    quality = {row["label"]: row for row in data["suggestion_quality"]["labels"]}
    assert {k: quality[cat][k] for k in ("label", "accepted", "decided", "accept_rate", "cv_ap", "cv_f1")} == {
        "label": cat,
        "accepted": 1,
        "decided": 2,
        "accept_rate": 0.5,
        "cv_ap": 0.7,
        "cv_f1": 0.8,
    }
    assert data["suggestion_quality"]["map"] == 0.5
    (person,) = data["annotators"]["people"]
    assert (person["name"], person["median_seconds"], person["accept_rate"]) == ("annie", 10.0, 0.5)
    (day,) = data["annotators"]["per_day"]
    assert (day["images"], day["boxes"], day["tags"]) == (6, 6, 6)
    pretrain = next(r for r in data["runs"] if r["kind"] == "pretrain")
    assert pretrain["probe"] == {"map": 0.5, "micro_f1": 0.6, "macro_f1": 0.4, "labeled": 6}


def test_it_shows_precision_coverage_and_accept_rate_of_confident_suggestions_side_by_side(team):
    from labeling.ml.confidence import wilson_lower

    project, annotator = team.project, team.annotator
    _populate(project, annotator, 6)
    cat, dog = project.labels.order_by("id").values_list("id", flat=True)
    probe = TrainingRun.objects.get(project=project, kind=RunKind.PROBE)
    probe.metrics["trust"] = {
        "ece": {"uncalibrated": 0.2, "calibrated": 0.05},
        "still_learning": None,
        "labels": [
            {
                "label_id": cat,
                "target": 0.9,
                "confident": True,
                "threshold": 0.8,
                "predictions": 40,
                "correct": 38,
                "near_chance": False,
            },
            {"label_id": dog, "target": 0.95, "confident": False, "threshold": None, "near_chance": True},
        ],
    }
    probe.metrics["learning_curve"] = [
        {"fraction": 0.5, "labeled": 3, "map": 0.4},
        {"fraction": 1.0, "labeled": 6, "map": 0.5},
    ]
    probe.save()
    quality = dashboard.project_dashboard(project_id=project.id)["suggestion_quality"]
    rows = {row["label"]: row for row in quality["labels"]}
    # 38 of 40 out-of-fold, then one accepted and one rejected on the current suggestions: 39 of 42.
    assert rows[cat]["estimated_precision"] == pytest.approx(39 / 42)
    assert rows[cat]["precision_lower_bound"] == pytest.approx(float(wilson_lower(39, 42)))
    assert rows[cat]["coverage"] == 0.5 and rows[cat]["accept_rate"] == 0.5  # 3 of 6 unlabeled images
    assert (rows[dog]["confident"], rows[dog]["estimated_precision"], rows[dog]["coverage"]) == (False, None, 0.0)
    assert quality["ece"]["calibrated"] == 0.05 and [p["labeled"] for p in quality["learning_curve"]] == [3, 6]


def test_it_takes_the_median_of_odd_and_even_counts(team):
    project, owner, annotator = team.project, team.owner, team.annotator
    now = timezone.now()
    for i, seconds in enumerate([5.0, 1.0, 100.0]):
        _images(
            project,
            1,
            start=i,
            status=ImageStatus.SUBMITTED,
            submitted_by=annotator,
            submitted_at=now,
            work_seconds=seconds,
        )
    for i, seconds in enumerate([2.0, 4.0, 6.0, 1000.0]):
        _images(
            project,
            1,
            start=10 + i,
            status=ImageStatus.SUBMITTED,
            submitted_by=owner,
            submitted_at=now,
            work_seconds=seconds,
        )
    assert dashboard.median_seconds_per_image(project_id=project.id) == {annotator.id: 5.0, owner.id: 5.0}


def test_it_times_an_image_from_the_queue_hand_out_to_the_submit(team, settings):
    project, annotator = team.project, team.annotator
    (image,) = _images(project, 1)
    handed = queue_next(project=project, user=annotator)
    assert handed.pk == image.pk and handed.opened_at is not None
    Image.objects.filter(pk=image.pk).update(opened_at=handed.opened_at - timedelta(seconds=42))
    handed.refresh_from_db()
    image_submit(image=handed, user=annotator, version=handed.version)
    handed.refresh_from_db()
    assert 42 <= handed.work_seconds < 60


def test_the_dashboard_query_count_does_not_grow_with_the_project(team, client, django_assert_max_num_queries):
    project, owner, annotator = team.project, team.owner, team.annotator
    client.force_login(owner)
    _populate(project, annotator, 5)
    with django_assert_max_num_queries(30) as small:
        assert client.get(f"/api/projects/{project.id}/dashboard/").status_code == 200
    _populate(project, make_user("second"), 60, start=1000)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(f"/api/projects/{project.id}/dashboard/").status_code == 200


@pytest.mark.parametrize(
    "url", ["/projects/{id}/dashboard/", "/api/projects/{id}/dashboard/", "/api/projects/{id}/embedding-map/"]
)
def test_only_project_admins_see_the_dashboard(team, client, url):
    project, owner, annotator, outsider = team.project, team.owner, team.annotator, team.outsider
    url = url.format(id=project.id)
    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 200
    client.force_login(annotator)
    assert client.get(url).status_code == 403
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_the_page_links_plotly_from_our_own_static_files(team, client):
    project, owner = team.project, team.owner
    client.force_login(owner)
    html = client.get(f"/projects/{project.id}/dashboard/").content.decode()
    assert "/static/vendor/plotly.min.js" in html and "dashboard-config" in html
    assert "//cdn" not in html
    assert f"/projects/{project.id}/dashboard/" in client.get(f"/projects/{project.id}/").content.decode()


def test_the_embedding_map_rejects_a_bad_cursor(team, client):
    project, owner = team.project, team.owner
    client.force_login(owner)
    assert client.get(f"/api/projects/{project.id}/embedding-map/?after=x").status_code == 400
    assert client.get(f"/api/projects/{project.id}/embedding-map/?limit=0").status_code == 400
    assert client.get(f"/api/projects/{project.id}/embedding-map/").json()["points"] == []


def test_a_failed_run_is_retried_by_admins_only(team, client, settings, tmp_path):
    project, owner, annotator = team.project, team.owner, team.annotator
    settings.MODEL_DIR = tmp_path
    run = TrainingRun.objects.create(
        project=project, kind=RunKind.PRETRAIN, status=RunStatus.FAILED, config={"epochs": 1, "resolution": 16}
    )
    client.force_login(annotator)
    assert client.post(f"/api/runs/{run.id}/retry/").status_code == 403
    client.force_login(owner)
    response = client.post(f"/api/runs/{run.id}/retry/")
    assert response.status_code == 201, response.json()
    retried = TrainingRun.objects.get(pk=response.json()["id"])
    assert retried.status == RunStatus.QUEUED and retried.config["epochs"] == 1 and retried.pk != run.pk
    assert client.post(f"/api/runs/{retried.id}/retry/").status_code == 400  # not failed: nothing to retry


def test_annotation_writes_keep_the_box_and_tag_counts(team):
    from annotator.services.annotations import annotation_save
    from annotator.services.annotations import annotations_import, BoxIn, ImageAnnotations

    project, owner, annotator = team.project, team.owner, team.annotator
    cat, dog = project.labels.order_by("id")
    first, second = _images(project, 2)
    annotation_save(
        image=first, user=annotator, version=1, boxes=[BoxIn(cat.id, 0, 0, 2, 2)] * 3, tag_label_ids=[dog.id]
    )
    annotations_import(
        project=project,
        user=owner,
        items=[ImageAnnotations(second.id, boxes=(BoxIn(dog.id, 1, 1, 2, 2),), tag_label_ids=(cat.id, dog.id))],
    )
    counts = dict((i, (b, t)) for i, b, t in Image.objects.values_list("id", "box_count", "human_tag_count"))
    assert counts == {first.id: (3, 1), second.id: (1, 2)}


def test_it_shows_review_verdicts_per_annotator_and_agreement_per_pair(team, client):
    project, owner, annotator = team.project, team.owner, team.annotator
    _populate(project, annotator, 4)
    done = list(Image.objects.filter(project=project, status=ImageStatus.SUBMITTED).order_by("id"))
    Review.objects.bulk_create(
        [
            Review(image=done[0], annotator=annotator, reviewer=owner, decision=ReviewStatus.ACCEPTED),
            Review(image=done[1], annotator=annotator, reviewer=owner, decision=ReviewStatus.ACCEPTED),
            Review(
                image=done[2], annotator=annotator, reviewer=owner, decision=ReviewStatus.REJECTED, comment="fix it"
            ),
        ]
    )
    cat, dog = project.labels.order_by("id").values_list("id", flat=True)
    AnnotationSnapshot.objects.bulk_create(
        [
            AnnotationSnapshot(
                image=done[3], annotator=annotator, pass_number=1, boxes=[[cat, 0, 0, 10, 10]], tags=[dog]
            ),
            AnnotationSnapshot(
                image=done[3], annotator=owner, pass_number=2, boxes=[[cat, 1, 0, 10, 10]], tags=[dog, cat]
            ),
        ]
    )
    client.force_login(owner)
    data = client.get(f"/api/projects/{project.id}/dashboard/").json()
    (review,) = data["reviews"]
    assert (review["annotator_id"], review["accepted"], review["rejected"]) == (annotator.id, 2, 1)
    assert review["accept_rate"] == pytest.approx(2 / 3)
    (pair,) = data["agreement"]
    assert sorted(pair["annotators"]) == ["annie", "owner"] and pair["images"] == 1
    assert pair["box_f1"] == 1.0 and pair["tag_jaccard"] == 0.5  # IoU 0.82 matches; tags {dog} vs {dog, cat}


def test_it_shows_the_detectors_coco_quality_and_what_people_did_with_its_boxes(team, client):
    from labeling.models import BoxSuggestionDecision

    project, cat, dog = team.project, team.cat, team.dog
    images = _images(project, 4)
    old = TrainingRun.objects.create(project=project, kind=RunKind.DETECTOR, status=RunStatus.SUCCEEDED)
    run = TrainingRun.objects.create(
        project=project,
        kind=RunKind.DETECTOR,
        status=RunStatus.SUCCEEDED,
        metrics={
            "train_images": 40,
            "held_out_images": 10,
            "boxed_images": 50,
            "backbone": "barlow_twins",
            "coco": {
                "ap50": 0.7,
                "map": 0.4,
                "labels": {"cat": {"ap50": 0.9, "map": 0.5}, "dog": {"ap50": 0.5, "map": 0.3}},
                "evaluator": "pycocotools COCOeval (bbox)",
            },
            "trust": {"labels": [{"label_id": cat.id, "confident": True, "threshold": 0.6, "shown_from": 0.45}]},
        },
    )
    ProjectModelState.objects.create(project=project, detector_run=run)
    shown = dict(x=1, y=1, w=5, h=5, score=0.9)
    for k, (label, decision, r) in enumerate(
        [
            (cat, "accepted", old),
            (cat, "adjusted", run),
            (cat, "adjusted", run),
            (cat, "rejected", run),
            (dog, "rejected", run),
        ]
    ):
        BoxSuggestionDecision.objects.create(
            run=r, suggestion_id=k + 1, image=images[k % 4], label=label, decision=decision, **shown
        )
    client.force_login(team.owner)
    data = client.get(f"/api/projects/{project.id}/dashboard/").json()
    q = data["box_quality"]
    assert (q["detector_run"], q["ap50"], q["map"], q["held_out_images"]) == (run.id, 0.7, 0.4, 10)
    assert (q["decided"], q["accepted_rate"], q["adjusted_rate"], q["rejected_rate"]) == (5, 0.2, 0.4, 0.4)
    by_label = {r["label"]: r for r in q["labels"]}
    assert by_label[dog.id]["shown_from"] is None  # not among the run's classes: it has no boxes to draw
    assert by_label[cat.id] == {
        "label": cat.id,
        "ap50": 0.9,
        "map": 0.5,
        "confident": True,
        "threshold": 0.6,
        "shown_from": 0.45,
        "shown_withdrawn": False,
        "shown_raised_from": None,
        "decided": 4,
        "accepted": 1,
        "adjusted": 2,
        "rejected": 1,
        "accepted_rate": 0.25,
        "adjusted_rate": 0.5,
        "rejected_rate": 0.25,
    }
    assert (by_label[dog.id]["ap50"], by_label[dog.id]["rejected_rate"], by_label[dog.id]["confident"]) == (
        0.5,
        1.0,
        False,
    )
    # Rejections since the fit hid cat's unconfident boxes: the column says so.
    run.metrics["trust"]["labels"][0].update(shown_from=0.6, shown_withdrawn={"measured": 13, "shown_from": 0.45})
    run.save(update_fields=["metrics"])
    hidden = client.get(f"/api/projects/{project.id}/dashboard/").json()["box_quality"]["labels"]
    assert [(r["shown_from"], r["shown_withdrawn"]) for r in hidden if r["label"] == cat.id] == [(0.6, True)]
    # Or raised its cutoff from the fit's: the column says from where.
    del run.metrics["trust"]["labels"][0]["shown_withdrawn"]
    run.metrics["trust"]["labels"][0].update(shown_from=0.5, shown_raised={"measured": 13, "shown_from": 0.45})
    run.save(update_fields=["metrics"])
    raised = client.get(f"/api/projects/{project.id}/dashboard/").json()["box_quality"]["labels"]
    assert [(r["shown_from"], r["shown_raised_from"]) for r in raised if r["label"] == cat.id] == [(0.5, 0.45)]
    # The run comparison has a detector row: its COCO figures and what it learnt from.
    row = next(r for r in data["runs"] if r["id"] == run.id)
    assert row["detector"] == {
        "ap50": 0.7,
        "map": 0.4,
        "train_images": 40,
        "held_out_images": 10,
        "boxed_images": 50,
        "backbone": "barlow_twins",
    }
    assert next(r for r in data["runs"] if r["id"] == old.id)["detector"] is None  # no metrics: no figures


def test_before_any_detector_the_box_quality_is_empty(team):
    q = dashboard.box_quality(project_id=team.project.id, detector_run_id=None)
    assert (q["detector_run"], q["ap50"], q["decided"], q["accepted_rate"]) == (None, None, 0, None)
    assert [(r["label"], r["decided"], r["ap50"]) for r in q["labels"]] == [
        (team.cat.id, 0, None),
        (team.dog.id, 0, None),
    ]
