"""What box suggestions save an annotator, measured in Chromium (Playwright) on the annotate page
against the real web server (bin/web): pointer actions and seconds per image to reach the ground
truth boxes of demo scenes (annotator/demo/scenes.py gives them exactly).

    python -m bench.box_actions [--images 20] [--judge 60] [--train 120] [--steps 200] [--no-detector]

A script acts as the annotator, on the same bench images in three projects:

- ``scratch``: no suggestions; every ground-truth box is drawn (one drag each; a label key, with an
  Esc first when a box is selected, when the class changes);
- ``imported``: box suggestions imported through the app's own predictions path
  (labeling.external.predictions_import, the native JSON format) from a synthetic detector of known
  quality: the ground truth perturbed with controlled noise (``NOISE``), judged by the app on
  ``--judge`` submitted images with the same noise, so the confident thresholds are the app's own;
- ``detector``: box suggestions of a real detector run (labeling.detection.run_detector, the CPU
  preset with ``--steps``) trained on ``--train`` submitted scenes, its backbone random weights
  (no Barlow Twins pretraining in this bench: the CPU gap between the two was within noise, see
  bench/results/box_quality_cpu_clutter_brief.json); the page draws the boxes the run found worth
  judging (labeling.trust's shown_from, SHOW_PRECISION) and the confident ones;
- ``detector_floor`` and ``imported_floor``: the same run's suggestions copied to a project of their
  own with every box drawn from the page's 0.3 floor (as before shown_from): the same fit, judged
  both ways. ``--false-positives 3`` makes the synthetic detector weak: labels drawn from some
  score on and confident only higher up (box_actions_fp3.json).

On an image with suggestions, the shown ones (store.shownBoxSuggestions) are matched greedily by IoU
to the ground truth of the same label, then, in the page's order (A and R move the ring on, so
"A A R" walks the list):

- IoU >= 0.7: accepted (A; when every confident shown suggestion is one of these, one ⇧A takes them);
- 0.3 <= IoU < 0.7: adjusted: the worse corner handle of the ringed suggestion dragged to the truth
  (that accepts it as "model_adjusted"); when the other corner is off by more than a pixel too, a
  click selects the new box and a drag moves that handle;
- otherwise: rejected (R), or with ``--wrong skip`` left undecided (Tab moves past it when a box
  after it is needed; Enter submits without deciding the rest) unless it lies within 8 px of a box
  to adjust (its handles would be in the way: then R); a ground-truth box nothing matched is drawn
  as in ``scratch``. A skipped box records no rejection, so the app learns nothing from it.

Ringing a suggestion costs one Tab (or Shift+Tab) press per step, or a click on it where that is
fewer. Enter submits. Counted: drags (one press-move-release each), clicks, key presses. Seconds:
from the image being interactive to the next one being interactive after Enter, as the script runs
it: the page's and server's own time for these actions, not a person's (no pointing or thinking).
As a person's time we add an estimate by the Keystroke-Level Model's operator times (Card, Moran and
Newell 1980: K 0.28 s a key, P 1.1 s a pointing, B 0.1 s a button press or release), marked as
modelled, and beside it the same with KLM's mental operator (M 1.35 s) once per box decided or drawn.
The boxes the images end with are compared with the ground truth (IoU per box), so a
condition that did not reach it shows. Results: bench/results/box_actions.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SIZE = (256, 256)  # the demo project's scenes
BENCH_START = 10_000  # scene indices of the bench images (the training and judging ones start at 0)
ACCEPT_IOU, ADJUST_IOU = 0.7, 0.3
# The synthetic detector: each ground-truth box is predicted near-exactly (IoU >= 0.85), loosely
# (IoU 0.35-0.65) or missed; each image gets a false positive (a box of a random label where no
# object is) with FALSE_POSITIVE_RATE, which makes about a tenth of the predictions false. A rate
# over 1 (--false-positives) is that many false boxes an image on average: a weak detector whose
# labels are precise enough to draw from some score on, and confident only higher up.
NOISE = {"near_exact": 0.7, "loose": 0.2, "missed": 0.1}
FALSE_POSITIVE_RATE = 0.2
SCORES = {"near_exact": (0.6, 0.99), "loose": (0.35, 0.8), "false_positive": (0.3, 0.75)}
KLM = {"key": 0.28, "click": 1.1 + 0.2, "drag": 2 * (1.1 + 0.1)}  # seconds per action, modelled
# KLM's mental operator M (1.35 s), once per box decided (accepted, adjusted, rejected or drawn): the
# look that judges a drawn box, or finds the next object to draw. The figure with it is reported
# beside the one without, which counts only the hands.
KLM_MENTAL = 1.35


def main() -> None:
    args = _args()
    sys.path.insert(0, str(ROOT))
    from bench._util import browser_log_in, django_setup, machine_load, write_result

    load = os.getloadavg()
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM setup beside Playwright's loop
    django_setup(DETECTOR_REFIT_EVERY="1000000", PROBE_REFIT_EVERY="1000000")
    from django.contrib.auth import get_user_model
    from django.db import connection

    password = secrets.token_urlsafe(12)
    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}", password=password)
    bench = list(range(BENCH_START, BENCH_START + args.images))
    projects = {"scratch": _project("scratch", user, [], bench)}
    projects["imported"] = _project("imported", user, list(range(args.judge)), bench)
    noise = _import_noisy(projects["imported"], args.judge, args.false_positives)
    projects["imported_floor"] = _project("imported-floor", user, [], bench)
    noise["shown"] = _copy_drawn_from_the_floor(projects["imported"], projects["imported_floor"])
    detector_run = None
    if args.detector:
        projects["detector"] = _project("detector", user, list(range(args.train)), bench)
        detector_run = _fit_detector(projects["detector"], args.steps)
        projects["detector_floor"] = _project("detector-floor", user, [], bench)
        detector_run["shown"] = _copy_drawn_from_the_floor(projects["detector"], projects["detector_floor"])
    connection.close()

    from playwright.sync_api import sync_playwright

    from tests import procs

    env = procs.service_env(MEDIA_ROOT=os.environ["MEDIA_ROOT"], WEB_ACCESS_LOG="/dev/null")
    if not os.environ.get("DATABASE_URL"):
        env.pop("DATABASE_URL")  # the embedded default, under the same TWINLABEL_VAR_DIR
    conditions = {}
    with procs.web(env) as (_, url), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        browser_log_in(page, url, user.username, password)
        for name, (project, ids) in projects.items():
            conditions[name] = _annotate_all(
                page, url, project, ids, use_suggestions=name != "scratch", wrong=args.wrong
            )
            print(name, json.dumps(conditions[name]["summary"]))
        browser.close()
    figures = {
        "images": args.images,
        "scene_size": list(SIZE),
        "ground_truth_boxes": sum(len(_truth(i)) for i in bench),
        "rules": {"accept_iou": ACCEPT_IOU, "adjust_iou": [ADJUST_IOU, ACCEPT_IOU], "wrong": args.wrong},
        "klm_seconds_per_action": KLM,
        "imported_noise": {
            "synthetic": True,
            "per_truth_box": NOISE,
            "false_positive_per_image": args.false_positives,
            "scores": SCORES,
            "judged_on_submitted_images": args.judge,
            "realised_on_bench_images": noise,
        },
        "detector_run": detector_run,
        "conditions": {name: c["summary"] for name, c in conditions.items()},
        "hidden_by_rejections": {name: _hidden_by_rejections(project) for name, (project, _) in projects.items()},
        "per_image": {name: c["images"] for name, c in conditions.items()},
        "page_errors": errors,
        "load": machine_load(load),
    }
    weak = f"_fp{args.false_positives:g}" if args.false_positives != FALSE_POSITIVE_RATE else ""
    write_result("box_actions" + ("_skip_wrong" if args.wrong == "skip" else "") + weak, figures)


# ---------------------------------------------------------------------------------------------
# The projects


def _truth(index: int) -> list[tuple[str, tuple[float, float, float, float]]]:
    from annotator.demo.scenes import render_scene

    return [(o.label, o.box) for o in render_scene(index, size=SIZE).objects]


def _png(index: int) -> bytes:
    from annotator.demo.scenes import render_scene

    buffer = io.BytesIO()
    render_scene(index, size=SIZE).image.save(buffer, "PNG")
    return buffer.getvalue()


def _project(name: str, user, submitted: list[int], bench: list[int]):
    """A project of demo scenes: ``submitted`` ones with their true boxes, then the ``bench`` ones
    unsubmitted. -> (project, {image id: scene index} of the bench images)."""
    from annotator.demo.scenes import LABELS
    from annotator.services.annotations import BoxIn, ImageAnnotations, annotations_import
    from annotator.services.images import images_import
    from annotator.services.projects import project_create
    from annotator.sources import ImageSource

    project = project_create(name=f"box-actions-{name}", user=user, labels=LABELS)
    scenes = submitted + bench
    report = images_import(project=project, sources=[ImageSource(f"s{i}.png", lambda i=i: _png(i)) for i in scenes])
    ids = [item.image_id for item in report.imported]
    assert len(ids) == len(scenes), report
    label_id = dict(project.labels.values_list("name", "id"))
    annotations_import(
        project=project,
        user=user,
        items=[
            ImageAnnotations(image_id, boxes=tuple(BoxIn(label_id[label], *box) for label, box in _truth(i)))
            for image_id, i in zip(ids, submitted)
        ],
    )
    return project, dict(zip(ids[len(submitted) :], bench))


def _iou(a, b) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    h = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _perturbed(rng: np.random.Generator, box, low: float, high: float, spread: float):
    """A box within the image whose IoU with ``box`` lies in [low, high] (rejection sampling)."""
    x, y, w, h = box
    for _ in range(10_000):
        dx0, dx1 = rng.uniform(-spread, spread, 2) * w
        dy0, dy1 = rng.uniform(-spread, spread, 2) * h
        x0, y0 = max(0.0, x + dx0), max(0.0, y + dy0)
        x1, y1 = min(SIZE[0], x + w + dx1), min(SIZE[1], y + h + dy1)
        candidate = (x0, y0, x1 - x0, y1 - y0)
        if candidate[2] >= 4 and candidate[3] >= 4 and low <= _iou(candidate, box) <= high:
            return candidate
    raise RuntimeError(f"no perturbation of {box} with IoU in [{low}, {high}]")


def _false_positive(rng: np.random.Generator, truths):
    for _ in range(10_000):
        w, h = rng.uniform(20, 60, 2)
        x, y = rng.uniform(0, SIZE[0] - w), rng.uniform(0, SIZE[1] - h)
        if all(_iou((x, y, w, h), box) < 0.05 for _, box in truths):
            return (float(x), float(y), float(w), float(h))
    raise RuntimeError("no room for a false positive")


def _noisy_predictions(index: int, rng: np.random.Generator, tally: dict, rate: float) -> list[dict]:
    from annotator.demo.scenes import LABELS

    truths = _truth(index)
    out = []
    for label, box in truths:
        kind = rng.choice(list(NOISE), p=list(NOISE.values()))
        tally[kind] += 1
        if kind == "missed":
            continue
        near = kind == "near_exact"
        guess = _perturbed(rng, box, 0.85, 1.0, 0.05) if near else _perturbed(rng, box, 0.35, 0.65, 0.45)
        out.append({"label": label, "bbox": [round(v, 2) for v in guess], "score": float(rng.uniform(*SCORES[kind]))})
    for _ in range(int(rate) + int(rng.random() < rate - int(rate))):
        tally["false_positive"] += 1
        out.append(
            {
                "label": str(rng.choice(LABELS)),
                "bbox": [round(v, 2) for v in _false_positive(rng, truths)],
                "score": float(rng.uniform(*SCORES["false_positive"])),
            }
        )
    return out


def _import_noisy(project_ids, judged: int, rate: float) -> dict:
    """The synthetic detector's boxes for every image, through the predictions import. -> what the
    noise came to on the bench images."""
    from annotator.models import Image
    from labeling.external import predictions_import

    project, bench = project_ids
    rng = np.random.default_rng(16)
    tally = {"near_exact": 0, "loose": 0, "missed": 0, "false_positive": 0}
    judge_tally = dict(tally)
    index_of = {**{image_id: i for image_id, i in bench.items()}}
    names = dict(Image.objects.filter(project=project).values_list("id", "original_name"))
    for image_id, name in names.items():
        if image_id not in index_of:
            index_of[image_id] = int(name[1:-4])  # s<index>.png
    predictions = [
        {
            "image_id": image_id,
            "boxes": _noisy_predictions(index, rng, tally if image_id in bench else judge_tally, rate),
        }
        for image_id, index in sorted(index_of.items())
    ]
    body = json.dumps({"model_version": "synthetic-noisy-ground-truth", "predictions": predictions}).encode()
    report = predictions_import(project=project, user=None, fmt="json", files=[("p.json", body)])
    print("imported:", report.boxes_note, "confident", report.boxes_confident)
    return {**tally, "stored": report.boxes_stored, "confident": report.boxes_confident, "note": report.boxes_note}


def _copy_drawn_from_the_floor(source, target) -> dict:
    """The detector run's box suggestions on the bench images of ``source``, copied to ``target``
    (the same scenes) as a run of its own with every row ``shown`` and every label's shown_from the
    page's 0.3 floor, without the held-out counts the live show rule adds rejections to: the floor
    alone, as before labeling.trust's shown_from. The same fit, annotated both ways (``detector`` and
    ``detector_floor``). -> how many rows each draws."""
    import copy

    from labeling.models import BoxSuggestion, ProjectModelState, TrainingRun
    from labeling.trust import BOX_SHOWN_FROM, box_trust_of

    (src_project, src_scenes), (dst_project, dst_scenes) = source, target
    run = ProjectModelState.objects.get(project=src_project).detector_run
    src_names = dict(src_project.labels.values_list("id", "name"))
    dst_labels = dict(dst_project.labels.values_list("name", "id"))
    label_of = {label_id: dst_labels[name] for label_id, name in src_names.items()}
    metrics = copy.deepcopy(run.metrics)
    for trust in (metrics.get("trust"), (metrics.get("boxes") or {}).get("trust")):
        for entry in (trust or {}).get("labels", []):
            entry["label_id"] = label_of[entry["label_id"]]
            # Drawn from the floor whatever the decisions: no held-out counts for the live show rule.
            entry.pop("shown_counts", None)
            entry.pop("shown_steps", None)
            entry["shown_from"] = BOX_SHOWN_FROM
    twin = TrainingRun.objects.create(
        project=dst_project, kind=run.kind, status=run.status, config=run.config, metrics=metrics, device=run.device
    )
    ProjectModelState.objects.update_or_create(project=dst_project, defaults={"detector_run": twin})
    image_of = {scene: image_id for image_id, scene in dst_scenes.items()}
    rows = list(BoxSuggestion.objects.filter(run=run, image_id__in=list(src_scenes)))
    BoxSuggestion.objects.bulk_create(
        BoxSuggestion(
            run=twin,
            image_id=image_of[src_scenes[r.image_id]],
            label_id=label_of[r.label_id],
            x=r.x,
            y=r.y,
            w=r.w,
            h=r.h,
            score=r.score,
            predicted=r.predicted,
            shown=True,
        )
        for r in rows
    )
    floor = [r for r in rows if r.predicted or r.score >= 0.3]
    return {
        "bench_rows": len(rows),
        "drawn_by_shown_from": sum(1 for r in floor if r.predicted or r.shown),
        "drawn_by_floor_alone": len(floor),
        "shown_from": {e["label"]: e.get("shown_from") for e in box_trust_of(run).get("labels", [])},
        "confident_from": {e["label"]: e.get("threshold") for e in box_trust_of(run).get("labels", [])},
    }


def _hidden_by_rejections(project) -> dict:
    """Per label, where the rejections while annotating stopped the unconfident boxes being drawn
    (labeling.trust's show rule, live): all of them ("hidden") or those under a raised cutoff
    ("raised_to"), with the estimate then; nothing when they never did."""
    from labeling.models import ProjectModelState
    from labeling.trust import box_trust_of

    state = ProjectModelState.objects.filter(project=project).select_related("detector_run").first()
    run = state.detector_run if state else None
    if run is None:
        return {}
    moved = {}
    for e in box_trust_of(run).get("labels", []):
        if "shown_withdrawn" in e:
            moved[e["label"]] = {"hidden": True, **e["shown_withdrawn"]}
        elif "shown_raised" in e:  # raised to the lowest cutoff still precise enough
            moved[e["label"]] = {"hidden": False, "raised_to": e["shown_from"], **e["shown_raised"]}
    return moved


def _fit_detector(project_ids, steps: int | None) -> dict:
    """A detector run as a worker runs it (in this process): the CPU preset, random backbone."""
    from labeling import config as labeling_config
    from labeling.models import BoxSuggestion
    from labeling.services import detector_start
    from twinlabel.celery import app

    project, _ = project_ids
    if steps:
        labeling_config.DETECTOR_PRESETS["cpu"] = {**labeling_config.DETECTOR_PRESETS["cpu"], "steps": steps}
    app.set_current()
    app.conf.task_always_eager = True
    started = time.perf_counter()
    run = detector_start(project=project)
    seconds = time.perf_counter() - started
    app.conf.task_always_eager = False
    run.refresh_from_db()
    assert run.status == "succeeded", (run.status, run.error)
    coco = run.metrics.get("coco") or {}
    rows = BoxSuggestion.objects.filter(run=run)
    out = {
        "status": run.status,
        "seconds": round(seconds, 1),
        "device": run.device,
        "config": run.config.get("plan", {}).get("detector"),
        "backbone": run.metrics.get("backbone"),
        "train_images": run.metrics.get("train_images"),
        "held_out_images": run.metrics.get("held_out_images"),
        "held_out_ap50_coco": coco.get("ap50"),
        "held_out_map_coco": coco.get("map"),
        "suggestions": rows.count(),
        "confident": rows.filter(predicted=True).count(),
    }
    print("detector:", json.dumps(out))
    return out


# ---------------------------------------------------------------------------------------------
# The annotator


class Annotator:
    """Acts on the open image and counts what it does."""

    def __init__(self, page):
        self.page = page
        self.counts = {"drag": 0, "click": 0, "key": 0}
        self.by_step: dict[str, int] = {}

    def _count(self, kind: str, step: str) -> None:
        self.counts[kind] += 1
        self.by_step[step] = self.by_step.get(step, 0) + 1

    def key(self, name: str, step: str) -> None:
        self.page.keyboard.press(name)
        self._count("key", step)

    def screen(self, x: float, y: float) -> tuple[float, float]:
        return self.page.evaluate(
            """([x, y]) => {
            const p = twinlabel.view.viewport.toScreen(x, y);
            const r = twinlabel.view.overlay.getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""",
            [x, y],
        )

    def click(self, x: float, y: float, step: str) -> None:
        self.page.mouse.click(*self.screen(x, y))
        self._count("click", step)

    def drag(self, a, b, step: str) -> None:
        self.page.mouse.move(*self.screen(*a))
        self.page.mouse.down()
        self.page.mouse.move(*self.screen(*b), steps=6)
        self.page.mouse.up()
        self._count("drag", step)

    def state(self) -> dict:
        return self.page.evaluate(
            """() => {
            const s = twinlabel.store;
            const rect = (b) => ({x: b.x, y: b.y, w: b.w, h: b.h});
            return {
                shown: s.shownBoxSuggestions().map((b) => ({id: b.id, label: b.label, score: b.score,
                    predicted: b.predicted, ...rect(b)})),
                focused: s.boxFocus,
                selected: s.selected,
                boxes: s.boxes.map((b) => ({cid: b.cid, label: b.label, ...rect(b)})),
                active: s.activeLabel,
                labels: s.labels.map((l) => ({id: l.id, name: l.name, hotkey: l.hotkey})),
                scale: twinlabel.view.viewport.scale,
                decided: s.boxSuggestions.filter((b) => b.decision).length,
            };
        }"""
        )

    def settle(self, decided: int) -> None:
        self.page.wait_for_function(
            f"() => twinlabel.store.boxSuggestions.filter((s) => s.decision).length >= {decided}"
            " && !twinlabel.session.busy"
        )


def _annotate_all(page, url, project, bench: dict[int, int], *, use_suggestions: bool, wrong: str = "reject") -> dict:
    first = min(bench)
    page.goto(f"{url}/projects/{project.id}/annotate/?image={first}")
    page.wait_for_selector("#annotate-app.ready")
    images = []
    done: set[int] = set()
    while len(done) < len(bench):
        image_id = page.evaluate("twinlabel.store.image.id")
        assert image_id in bench and image_id not in done, (image_id, done)
        page.wait_for_function("() => !twinlabel.session.busy")
        started = time.perf_counter()
        actor = Annotator(page)
        outcome = _annotate_one(actor, _truth(bench[image_id]), use_suggestions, wrong)
        actor.key("Enter", "submit")
        done.add(image_id)
        if len(done) < len(bench):
            page.wait_for_function(
                f"() => twinlabel.store.image && twinlabel.store.image.id !== {image_id} && !twinlabel.session.busy"
            )
        else:
            page.wait_for_selector("#done:not([hidden])")
        seconds = time.perf_counter() - started
        images.append(
            {
                "image_id": image_id,
                "scene": bench[image_id],
                "seconds": round(seconds, 3),
                **actor.counts,
                "steps": actor.by_step,
                **outcome,
                **_reached(image_id, _truth(bench[image_id])),
            }
        )
    return {"images": images, "summary": _summary(images)}


def _annotate_one(actor: Annotator, truth, use_suggestions: bool, wrong: str = "reject") -> dict:
    state = actor.state()
    name_of = {label["id"]: label["name"] for label in state["labels"]}
    plan = _plan(state["shown"], truth, name_of) if use_suggestions else {}
    if wrong == "skip":  # wrong boxes are left undecided, except those in the way of a box to adjust
        adjusting = [s for s in state["shown"] if plan.get(s["id"], (None, ""))[1] == "adjust"]
        plan = {
            sid: step
            for sid, step in plan.items()
            if step[1] != "reject" or any(_overlaps(_shown(state, sid), a) for a in adjusting)
        }
    missing = [t for k, t in enumerate(truth) if k not in {m for m, _ in plan.values() if m is not None}]
    kinds = {"accept": 0, "adjust": 0, "reject": 0, "draw": len(missing)}
    confident = [s["id"] for s in state["shown"] if s["predicted"]]
    if confident and all(plan.get(i, (None, "skip"))[1] == "accept" for i in confident):
        actor.key("Shift+A", "accept")
        actor.settle(state["decided"] + len(confident))
        kinds["accept"] += len(confident)
    while True:
        state = actor.state()
        todo = [s for s in state["shown"] if s["id"] in plan]
        if not todo:
            break
        target = todo[0]
        truth_index, action = plan[target["id"]]
        kinds[action] += 1
        _ring(actor, state, target["id"], action)
        if action == "accept":
            actor.key("a", "accept")
        elif action == "reject":
            actor.key("r", "reject")
        else:
            _adjust(actor, state, target, truth[truth_index][1])
            continue
        actor.settle(state["decided"] + 1)
    for label, box in sorted(missing, key=lambda t: t[0]):
        _draw(actor, label, box)
    return {"plan": kinds}


def _plan(shown: list[dict], truth, name_of: dict) -> dict[int, tuple[int | None, str]]:
    """Suggestion id -> (the truth box it stands for, "accept" / "adjust" / "reject"): greedy by IoU
    over pairs of the same label."""
    pairs = sorted(
        (
            (_iou((s["x"], s["y"], s["w"], s["h"]), box), s["id"], k)
            for s in shown
            for k, (label, box) in enumerate(truth)
            if name_of[s["label"]] == label
        ),
        reverse=True,
    )
    plan: dict[int, tuple[int | None, str]] = {}
    used: set[int] = set()
    for iou, sid, k in pairs:
        if sid in plan or k in used or iou < ADJUST_IOU:
            continue
        plan[sid] = (k, "accept" if iou >= ACCEPT_IOU else "adjust")
        used.add(k)
    for s in shown:
        plan.setdefault(s["id"], (None, "reject"))
    return plan


def _ring(actor: Annotator, state: dict, target: int, step: str) -> None:
    """Ring ``target``: nothing when it is ringed, else the fewer of Tab presses and one click."""
    ids = [s["id"] for s in state["shown"]]
    at = ids.index(state["focused"]) if state["focused"] in ids else None
    to = ids.index(target)
    forward = (to - at) % len(ids) if at is not None else to + 1
    backward = (at - to) % len(ids) if at is not None else len(ids) - to
    if forward == 0:
        return
    if min(forward, backward) > 1:
        point = _click_point(state, target)
        if point is not None:
            actor.click(*point, step)
            if actor.state()["focused"] == target:
                return
    for _ in range(forward if forward <= backward else backward):
        actor.key("Tab" if forward <= backward else "Shift+Tab", step)
    assert actor.state()["focused"] == target


def _click_point(state: dict, target: int) -> tuple[float, float] | None:
    """A point inside ``target`` where it is the smallest shown suggestion, on no drawn box and off
    the ringed suggestion's and the selected box's outlines (a press there would start a drag)."""
    tol = 8 / state["scale"]
    rects = {s["id"]: s for s in state["shown"]}
    t = rects[target]
    ringed = rects.get(state["focused"])
    selected = next((b for b in state["boxes"] if b["cid"] == state["selected"]), None)
    for fx in (0.5, 0.3, 0.7):
        for fy in (0.5, 0.3, 0.7):
            x, y = t["x"] + fx * t["w"], t["y"] + fy * t["h"]
            under = [s for s in state["shown"] if _inside(s, x, y)]
            if min(under, key=lambda s: s["w"] * s["h"])["id"] != target:
                continue
            if any(_inside(b, x, y) for b in state["boxes"]):
                continue
            if any(r is not None and _near_edge(r, x, y, tol) for r in (ringed, selected)):
                continue
            return x, y
    return None


def _shown(state: dict, sid: int) -> dict:
    return next(s for s in state["shown"] if s["id"] == sid)


def _overlaps(a: dict, b: dict, margin: float = 8.0) -> bool:
    """Whether two boxes (with ``margin`` px around them, the handles' reach) overlap."""
    return (
        a["x"] - margin < b["x"] + b["w"] + margin
        and b["x"] - margin < a["x"] + a["w"] + margin
        and a["y"] - margin < b["y"] + b["h"] + margin
        and b["y"] - margin < a["y"] + a["h"] + margin
    )


def _inside(r: dict, x: float, y: float, slack: float = 0.0) -> bool:
    return r["x"] - slack <= x <= r["x"] + r["w"] + slack and r["y"] - slack <= y <= r["y"] + r["h"] + slack


def _near_edge(r: dict, x: float, y: float, tol: float) -> bool:
    if not _inside(r, x, y, tol):
        return False
    return x - r["x"] <= tol or r["x"] + r["w"] - x <= tol or y - r["y"] <= tol or r["y"] + r["h"] - y <= tol


def _corners(r) -> dict[str, tuple[float, float]]:
    x, y, w, h = r
    return {"nw": (x, y), "se": (x + w, y + h), "ne": (x + w, y), "sw": (x, y + h)}


def _adjust(actor: Annotator, state: dict, s: dict, box) -> None:
    """Drag the ringed suggestion's worse corner to the truth's (an adjusted accept), then, when the
    opposite corner is off by more than a pixel, select the new box and drag that one too."""
    have, want = _corners((s["x"], s["y"], s["w"], s["h"])), _corners(box)
    error = {c: max(abs(have[c][0] - want[c][0]), abs(have[c][1] - want[c][1])) for c in have}
    first = max(("nw", "se", "ne", "sw"), key=lambda c: error[c])
    opposite = {"nw": "se", "se": "nw", "ne": "sw", "sw": "ne"}[first]
    actor.drag(have[first], want[first], "adjust")
    actor.settle(state["decided"] + 1)
    if error[opposite] <= 1.0:
        return
    after = actor.state()
    mine = max(after["boxes"], key=lambda b: _iou((b["x"], b["y"], b["w"], b["h"]), box))
    now = _corners((mine["x"], mine["y"], mine["w"], mine["h"]))
    if after["selected"] != mine["cid"]:
        point = _select_point(after, mine)
        actor.click(*point, "adjust")
        actor.page.wait_for_function(f"() => twinlabel.store.selected === {json.dumps(mine['cid'])}")
    actor.drag(now[opposite], want[opposite], "adjust")


def _select_point(state: dict, box: dict) -> tuple[float, float]:
    """Inside ``box``, where it is the smallest drawn box and off the ringed suggestion's outline."""
    tol = 8 / state["scale"]
    ringed = next((s for s in state["shown"] if s["id"] == state["focused"]), None)
    for fx in (0.5, 0.3, 0.7, 0.2, 0.8):
        for fy in (0.5, 0.3, 0.7, 0.2, 0.8):
            x, y = box["x"] + fx * box["w"], box["y"] + fy * box["h"]
            under = [b for b in state["boxes"] if _inside(b, x, y)]
            if min(under, key=lambda b: b["w"] * b["h"])["cid"] != box["cid"]:
                continue
            if ringed is not None and _near_edge(ringed, x, y, tol):
                continue
            return x, y
    raise RuntimeError(f"no point selects {box}")


def _draw(actor: Annotator, label: str, box) -> None:
    """A label key when the class changes (Esc first when a box is selected, or the key relabels
    it), then one drag between two opposite corners, from one where a press starts a new box."""
    state = actor.state()
    label_id = next(label_["id"] for label_ in state["labels"] if label_["name"] == label)
    if state["active"] != label_id:
        if state["selected"] is not None:
            actor.key("Escape", "draw")
        hotkey = next(label_["hotkey"] for label_ in state["labels"] if label_["id"] == label_id)
        actor.key(hotkey, "draw")
        state = actor.state()
    tol = 8 / state["scale"]
    ringed = next((s for s in state["shown"] if s["id"] == state["focused"]), None)
    selected = next((b for b in state["boxes"] if b["cid"] == state["selected"]), None)
    corners = _corners(box)
    for start, end in (("nw", "se"), ("se", "nw"), ("ne", "sw"), ("sw", "ne")):
        x, y = corners[start]
        if not any(r is not None and _near_edge(r, x, y, tol) for r in (ringed, selected)):
            break
    else:
        actor.key("Escape", "draw")
    actor.drag(corners[start], corners[end], "draw")


def _reached(image_id: int, truth) -> dict:
    """The saved boxes against the ground truth: each truth box's best IoU with a box of its label."""
    from annotator.models import Box

    saved = list(Box.objects.filter(image_id=image_id).values_list("label__name", "x", "y", "w", "h", "source"))
    ious = [max((_iou(b[1:5], box) for b in saved if b[0] == label), default=0.0) for label, box in truth]
    return {
        "truth_boxes": len(truth),
        "saved_boxes": len(saved),
        "sources": sorted(b[5] for b in saved),
        "ious": [round(v, 3) for v in ious],
        "min_iou": round(min(ious), 3) if ious else None,
        "mean_iou": round(float(np.mean(ious)), 3) if ious else None,
    }


def _summary(images: list[dict]) -> dict:
    actions = [i["drag"] + i["click"] + i["key"] for i in images]
    klm = [i["drag"] * KLM["drag"] + i["click"] * KLM["click"] + i["key"] * KLM["key"] for i in images]
    truth = sum(i["truth_boxes"] for i in images)
    ious = [i["min_iou"] for i in images if i["min_iou"] is not None]
    plans = {k: sum(i["plan"][k] for i in images) for k in ("accept", "adjust", "reject", "draw")}
    steps: dict[str, int] = {}
    for i in images:
        for k, v in i["steps"].items():
            steps[k] = steps.get(k, 0) + v
    return {
        "images": len(images),
        "truth_boxes": truth,
        "actions_per_image": round(sum(actions) / len(images), 2),
        "drags_per_image": round(sum(i["drag"] for i in images) / len(images), 2),
        "clicks_per_image": round(sum(i["click"] for i in images) / len(images), 2),
        "keys_per_image": round(sum(i["key"] for i in images) / len(images), 2),
        "actions_by_step": steps,
        "suggestions_handled": plans,
        "script_seconds_per_image": {
            "median": round(statistics.median(i["seconds"] for i in images), 3),
            "mean": round(statistics.mean(i["seconds"] for i in images), 3),
        },
        "klm_modelled_seconds_per_image": round(sum(klm) / len(images), 2),
        "klm_with_mental_seconds_per_image": round((sum(klm) + KLM_MENTAL * sum(plans.values())) / len(images), 2),
        "truth_reached_iou_0_7": sum(1 for i in images for v in i["ious"] if v >= 0.7),
        "worst_truth_iou": round(min(ious), 3) if ious else None,
        "extra_boxes": sum(max(0, i["saved_boxes"] - i["truth_boxes"]) for i in images),
    }


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=20, help="bench images per condition")
    p.add_argument("--judge", type=int, default=200, help="submitted images the imported predictions are judged on")
    p.add_argument("--train", type=int, default=120, help="submitted images the detector trains on")
    p.add_argument("--steps", type=int, default=None, help="detector steps (default: the CPU preset's)")
    p.add_argument("--no-detector", dest="detector", action="store_false")
    p.add_argument(
        "--false-positives",
        type=float,
        default=FALSE_POSITIVE_RATE,
        help="the synthetic detector's false boxes per image (over 1: a weak one; box_actions_fp<F>.json)",
    )
    p.add_argument(
        "--wrong",
        choices=("reject", "skip"),
        default="reject",
        help="what the annotator does with a wrong suggestion: R, or leave it (box_actions_skip_wrong.json)",
    )
    return p.parse_args()


if __name__ == "__main__":
    main()
