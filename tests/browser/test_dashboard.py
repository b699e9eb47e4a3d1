"""The project dashboard in real Chromium against the real server: every chart renders with data,
the console stays clean, runs compare and sort, and the embedding map opens an image.
UPDATE_DOCS_SCREENSHOTS=1 also writes docs/dashboard.png (the README's picture)."""

from __future__ import annotations

import os
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from annotator.models import Box, Image, ImageStatus, ImageTag, LabelClass, Role
from labeling.paths import run_dir, run_file
from labeling.pretraining import save_projection
from labeling.models import Decision, EmbeddingSet, ProjectModelState, RunKind, RunStatus, Suggestion
from labeling.models import SuggestionDecision, TrainingRun
from tests import procs
from tests.browser.session import log_in
from tests.factories import add_images, add_member, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]
READY = "body[data-dashboard=ready]"


@pytest.fixture
def dashboard_server(transactional_db, media_root, settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    with procs.web(procs.service_env(MEDIA_ROOT=str(media_root), MODEL_DIR=str(settings.MODEL_DIR))) as (_, url):
        yield url


def _seed():
    """A project as after a few days of work: two annotators, two pretrainings with probes, suggestions
    and decisions, an embedding map of three clusters, TensorBoard events."""
    owner, ann = make_user("owner"), make_user("ann")
    project = make_project(owner=owner, labels=("circle", "square", "triangle"), name="Shapes")
    add_member(project, ann, Role.ANNOTATOR)
    ids = add_images(project, 60, size=(48, 48))
    labels = list(LabelClass.objects.filter(project=project).order_by("order"))
    now = timezone.now()
    for n, image_id in enumerate(ids[:30]):
        who = (owner, ann)[n % 2]
        label = labels[n % 3]
        Image.objects.filter(pk=image_id).update(
            status=ImageStatus.SUBMITTED,
            submitted_by=who,
            work_seconds=5 + n,
            box_count=1,
            human_tag_count=1,
            submitted_at=now - timedelta(days=n % 4),
        )
        Box.objects.create(image_id=image_id, label=label, x=1, y=1, w=10, h=10, author=who)
        ImageTag.objects.create(image_id=image_id, label=label, author=who)
    Image.objects.filter(pk__in=ids[30:33]).update(status=ImageStatus.SKIPPED)
    runs = []
    for n, (resolution, epochs, cv_map) in enumerate([(32, 20, 0.41), (64, 60, 0.55)]):
        pretrain = TrainingRun.objects.create(
            project=project,
            kind=RunKind.PRETRAIN,
            status=RunStatus.SUCCEEDED,
            device="cpu",
            epochs=epochs,
            epoch=epochs,
            images_per_s=250.0,
            loss=200.0 - n * 30,
            started_at=now - timedelta(minutes=10),
            finished_at=now - timedelta(minutes=5),
            metrics={"final_loss": 200.0 - n * 30, "images": 60},
            loss_history=[[s, 400 - s * (1 + n)] for s in range(1, 120, 10)],
            config={
                "resolution": resolution,
                "epochs": epochs,
                "batch_size": 64,
                "lr_weights": 0.2,
                "crop_min": 0.5,
                "projector": [256],
            },
        )
        probe = TrainingRun.objects.create(
            project=project,
            kind=RunKind.PROBE,
            status=RunStatus.SUCCEEDED,
            backbone_run=pretrain,
            device="cpu",
            started_at=now - timedelta(minutes=4),
            finished_at=now - timedelta(minutes=4) + timedelta(seconds=3),
            metrics={
                "labeled": 30,
                "cv": {
                    "map": cv_map,
                    "micro_f1": cv_map + 0.05,
                    "macro_f1": cv_map - 0.05,
                    "labels": [label.name for label in labels],
                    "ap": [cv_map, cv_map + 0.1, cv_map - 0.1],
                    "f1": [cv_map - 0.05, cv_map + 0.05, cv_map - 0.1],
                },
                "learning_curve": [
                    {"fraction": f, "labeled": int(30 * f), "map": cv_map * (0.6 + 0.4 * f)} for f in (0.25, 0.5, 1.0)
                ],
            },
        )
        runs.append((pretrain, probe))
        from labeling.ml.tracking import TrainLog

        with TrainLog(run_file(pretrain.id, "tensorboard")) as board:
            board.scalars({"train/loss": 100.0}, step=1)
    pretrain, probe = runs[-1]
    probe.metrics.update(
        scorer="ensemble",
        finetune={
            "cv_map": 0.61,
            "frozen_cv_map": 0.55,
            "ensemble_cv_map": 0.63,
            "kept": "ensemble",
            "images": 30,
            "seconds": 42.4,
        },
    )
    probe.save(update_fields=["metrics"])
    TrainingRun.objects.create(
        project=project, kind=RunKind.PRETRAIN, status=RunStatus.FAILED, error="out of memory", config=pretrain.config
    )
    for n, image_id in enumerate(ids[33:]):
        Suggestion.objects.create(
            run=probe, image_id=image_id, label=labels[n % 3], probability=0.8, predicted=n % 4 != 0
        )
    for n, image_id in enumerate(ids[33:43]):
        SuggestionDecision.objects.create(
            image_id=image_id,
            label=labels[n % 3],
            run=probe,
            probability=0.8,
            decision=Decision.ACCEPTED if n % 3 else Decision.REJECTED,
            user=ann,
        )
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(3, 32))
    features = np.stack([centres[n % 3] + rng.normal(size=32) for n in range(len(ids))]).astype(np.float16)
    path = run_dir(pretrain.id) / "embeddings.npz"
    from labeling.ml.embed import save_embeddings

    save_embeddings(path, np.array(ids), features)
    save_projection(path, np.array(ids), features)
    EmbeddingSet.objects.create(run=pretrain, project=project, path=str(path), resolution=64, count=len(ids), dim=32)
    ProjectModelState.objects.create(project=project, pretrain_run=pretrain, probe_run=probe)
    return project, ids, [r for r, _ in runs]


def test_every_chart_renders_and_runs_compare(browser, page, dashboard_server):
    project, ids, pretrains = _seed()
    log_in(page, dashboard_server, "owner")
    page.goto(f"{dashboard_server}/projects/{project.id}/")
    page.click("#dashboard-link")
    page.wait_for_selector(READY, timeout=30_000)
    charts = page.evaluate("""() => [...document.querySelectorAll('.chart')].map((el) => ({
        id: el.id, plotly: el.classList.contains('js-plotly-plot'),
        traces: (el.data || []).length, points: (el.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0),
        svg: !!el.querySelector('svg.main-svg') }))""")
    assert len(charts) == 10  # nine, and the learning curve (issue 13)
    for chart in charts:
        assert chart["plotly"] and chart["svg"] and chart["traces"] > 0 and chart["points"] > 0, chart
    assert (
        "Scored by the backbone fine-tuned on the labels and the linear probe, averaged"
        " (out-of-fold mAP 0.610 fine-tuned against 0.550 frozen, 0.630 averaged, 42 s)"
        in (page.text_content("#quality-summary"))
    )
    # The learning curve is the frozen probe's; the fine-tuned network's mAP and the average's are a point each.
    curve = page.evaluate("() => document.getElementById('chart-curve').data.map((t) => [t.name, t.x, t.y])")
    assert curve == [
        ["linear probe, frozen features", [7, 15, 30], pytest.approx([0.55 * 0.7, 0.55 * 0.8, 0.55])],
        ["fine-tuned network", [30], [0.61]],
        ["fine-tuned and probe averaged", [30], [0.63]],
    ]
    map_points = next(c for c in charts if c["id"] == "chart-map")["points"]
    assert map_points == len(ids)
    # Compare both pretrainings; sort by a column's heading.
    for run in pretrains:
        page.check(f"#runs tr[data-run-id='{run.id}'] input[type=checkbox]")
    rows = page.locator("#compare-table tbody tr")
    assert rows.count() == 2
    first = lambda: rows.first.locator("td").first.text_content()  # noqa: E731
    assert first() == str(pretrains[1].id)  # by probe mAP, best first (the default)
    page.locator("#compare-table th[data-key='map']").click()
    assert first() == str(pretrains[0].id)
    page.locator("#compare-table th[data-key='epochs']").click()
    assert first() == str(pretrains[1].id)  # 60 epochs before 20
    assert page.locator("#runs a", has_text="TensorBoard events").count() == 2
    assert page.locator("#runs button", has_text="Retry").count() == 1
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=str(procs.ROOT / "docs" / "dashboard.png"), full_page=True)
    # A fit whose pretraining checkpoint was gone says why it did not fine-tune.
    probe = TrainingRun.objects.get(pk=ProjectModelState.objects.get(project=project).probe_run_id)
    probe.metrics.update(
        scorer="features",
        finetune={"kept": "features", "skipped": "the pretraining's checkpoint is missing", "images": 30},
    )
    probe.save(update_fields=["metrics"])
    page.reload()
    page.wait_for_selector(READY, timeout=30_000)
    assert "fine-tuning was skipped (the pretraining's checkpoint is missing)" in page.text_content("#quality-summary")
    assert page.evaluate("() => document.getElementById('chart-curve').data.length") == 1
    # A refit's first stage: the frozen probe's suggestions for now, the fine-tuning's run to follow.
    probe.metrics.update(finetune={"kept": "features", "deferred": True, "images": 30})
    probe.save(update_fields=["metrics"])
    page.reload()
    page.wait_for_selector(READY, timeout=30_000)
    assert "for now: a fine-tuning run follows with its own scores" in page.text_content("#quality-summary")
    assert page.evaluate("() => document.getElementById('chart-curve').data.length") == 1
    assert page.console_errors == []


def test_hovering_the_map_shows_the_image_and_clicking_opens_it(browser, page, dashboard_server):
    project, ids, _ = _seed()
    log_in(page, dashboard_server, "owner")
    page.goto(f"{dashboard_server}/projects/{project.id}/dashboard/")
    page.wait_for_selector(READY, timeout=30_000)
    point = page.locator("#chart-map .scatterlayer .point").first
    point.hover(force=True)
    page.wait_for_selector("#map-thumb:not([hidden])")
    shown = int(page.locator("#map-thumb").get_attribute("src").split("/")[2])
    assert shown in ids
    point.click(force=True)
    page.wait_for_url(f"**/projects/{project.id}/annotate/?image=*")
    assert page.url.endswith(f"?image={shown}")
    assert page.console_errors == []


def test_label_names_in_charts_never_become_links(browser, page, dashboard_server):
    """Issue 14, item 16: plotly renders <a href> in chart text; a label name is shown as written."""
    project, _, _ = _seed()
    evil = '<a href="https://example.com/x">circle</a>'
    LabelClass.objects.filter(project=project, name="circle").update(name=evil, name_key=evil)
    log_in(page, dashboard_server, "owner")
    page.goto(f"{dashboard_server}/projects/{project.id}/dashboard/")
    page.wait_for_selector(READY, timeout=30_000)
    assert page.locator("#chart-labels a, #chart-quality a, #chart-map a").count() == 0
    assert evil in page.locator("#chart-labels").inner_text()
    assert page.console_errors == []


def test_the_box_quality_table_renders_and_a_detector_run_joins_the_comparison(browser, page, dashboard_server):
    from labeling.models import BoxSuggestionDecision

    project, ids, pretrains = _seed()
    circle, square, _ = LabelClass.objects.filter(project=project).order_by("order")
    detector = TrainingRun.objects.create(
        project=project,
        kind=RunKind.DETECTOR,
        status=RunStatus.SUCCEEDED,
        backbone_run=pretrains[-1],
        device="cpu",
        config={"detector": {"size": 256}, "plan": {"train": ids[:24], "held_out": ids[24:30]}},
        metrics={
            "train_images": 24,
            "held_out_images": 6,
            "boxed_images": 30,
            "backbone": "barlow_twins",
            "coco": {"ap50": 0.62, "map": 0.31, "labels": {"circle": {"ap50": 0.875, "map": 0.5}}},
            "trust": {
                "labels": [
                    {"label_id": circle.id, "confident": True, "threshold": 0.7, "shown_from": 0.55},
                    # Rejections since the fit hid square's unconfident boxes (labeling.trust).
                    {"label_id": square.id, "confident": False, "shown_from": None, "shown_withdrawn": {}},
                ]
            },
        },
    )
    ProjectModelState.objects.filter(project=project).update(detector_run=detector)
    for k, decision in enumerate(["accepted", "adjusted", "adjusted", "rejected"]):
        BoxSuggestionDecision.objects.create(
            run=detector,
            suggestion_id=k + 1,
            image_id=ids[40 + k],
            label=circle,
            decision=decision,
            x=1,
            y=1,
            w=5,
            h=5,
            score=0.9,
        )
    log_in(page, dashboard_server, "owner")
    page.goto(f"{dashboard_server}/projects/{project.id}/dashboard/")
    page.wait_for_selector(READY, timeout=30_000)
    cells = page.locator("#box-quality tr").first.locator("td").all_text_contents()
    assert cells == ["circle", "0.875", "0.500", "yes (from 0.70)", "0.55", "4", "25 %", "50 %", "25 %"]
    assert page.locator("#box-quality tr").count() == 3
    assert (
        page.locator("#box-quality tr").nth(1).locator("td").nth(4).text_content() == "never (rejections hid the rest)"
    )
    assert "AP50 0.620, mAP 0.310" in page.text_content("#box-quality-summary")
    assert "AP50 0.620" in page.locator(f"#runs tr[data-run-id='{detector.id}']").text_content()
    page.check(f"#runs tr[data-run-id='{detector.id}'] input[type=checkbox]")
    page.check(f"#runs tr[data-run-id='{pretrains[-1].id}'] input[type=checkbox]")
    page.locator("#compare-table th[data-key='box_ap50']").click()
    row = page.locator("#compare-table tbody tr").first.locator("td").all_text_contents()
    assert row[0] == str(detector.id) and "0.620" in row and "0.310" in row
    assert page.locator("#compare-table tbody tr").count() == 2
    assert page.console_errors == []
