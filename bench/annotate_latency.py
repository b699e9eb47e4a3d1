"""The annotate page in Chromium (Playwright) against the real web server (bin/web) on loopback.

    python -m bench.annotate_latency [--images 100000] [--submits 30] [--only latency|heavy]

1. Submit latency, on a project with 100,000 images (rows bulk-created over a few real files):
   the median time from pressing Enter to the next image being interactive, measured in the page
   from the keydown event's timestamp to the end of the first frame that draws the next image
   (its state loaded into the store and its bitmap on the canvas: it takes input from then on).
   Two cases: Enter after the autosave finished, and Enter right after drawing a box (the pending
   save is flushed first). Target < 150 ms. Label Studio 1.23.2 on this kind of machine: 2.0–2.2 s
   to load its labeling page, 96 ms median to GET one task, 220 ms median to POST one annotation.
2. Heavy image: a 6000×4000 JPEG with 500 boxes; a box is dragged (Alt+drag) across 200 pointer
   moves. For each pointermove the page records the handler's time and the time of the frame
   that draws the result, with a 1-pixel getImageData after drawing so that the canvas really
   rasterises inside the measured time; plus the latency from the event's timestamp to that frame's
   end. Target < 16 ms median per pointer-move event.

A fresh embedded SQLite database under a temporary folder (or DATABASE_URL when set).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--submits", type=int, default=30)
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--only", choices=["latency", "heavy"])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench._util import browser_log_in, django_setup

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM setup beside Playwright's loop
    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from playwright.sync_api import sync_playwright

    from annotator.services.projects import project_create
    from tests import procs

    password = secrets.token_urlsafe(12)
    user = get_user_model().objects.create_user(f"bench-{time.time_ns()}", password=password)
    latency_project = heavy = None
    if args.only in (None, "latency"):
        latency_project = project_create(name="bench-annotate", user=user, labels=["cat", "dog", "car"])
        _add_rows(latency_project, args.images)
    if args.only in (None, "heavy"):
        heavy = _heavy_image(user)
    connection.close()

    env = procs.service_env(MEDIA_ROOT=os.environ["MEDIA_ROOT"], WEB_ACCESS_LOG="/dev/null")
    if not os.environ.get("DATABASE_URL"):
        env.pop("DATABASE_URL")  # the embedded default, under the same TWINLABEL_VAR_DIR
    with procs.web(env) as (_, url), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        browser_log_in(page, url, user.username, password)
        if latency_project:
            _report_latency(page, url, latency_project, args, connection.vendor)
        if heavy:
            _report_heavy(page, url, heavy, args)
        browser.close()


# ---- data -----------------------------------------------------------------------------------------


def _add_rows(project, count: int) -> None:
    """A few real images imported, then ``count`` rows in all pointing at their files."""
    from tests.factories import image_row
    from annotator.demo.scenes import generate
    from annotator.models import Image
    from annotator.services.images import images_import
    from annotator.sources import ImageSource

    sources = []
    for scene in generate(4, seed=3, size=(640, 480)):
        buffer = io.BytesIO()
        scene.image.save(buffer, "JPEG", quality=90)
        sources.append(ImageSource(f"real-{scene.index}.jpg", lambda data=buffer.getvalue(): data))
    images_import(project=project, sources=sources)
    real = list(Image.objects.filter(project=project))
    for chunk in range(len(real), count, 10_000):
        Image.objects.bulk_create(
            [
                image_row(
                    project,
                    i,
                    size_bytes=real[0].size_bytes,
                    file=real[i % len(real)].file.name,
                    thumbnail=real[i % len(real)].thumbnail.name,
                )
                for i in range(chunk, min(chunk + 10_000, count))
            ],
            batch_size=2000,
        )
    print(f"{Image.objects.filter(project=project).count()} images in the latency project")


def _heavy_image(user):
    from PIL import Image as PILImage

    from annotator.models import Box, Image
    from annotator.services.images import images_import
    from annotator.services.projects import project_create
    from annotator.sources import ImageSource

    project = project_create(name="bench-heavy", user=user, labels=["cat", "dog", "car", "person", "tree"])
    size = (6000, 4000)
    noise = PILImage.effect_noise(size, 48).convert("L")
    gradient = PILImage.linear_gradient("L").resize(size)
    picture = PILImage.merge("RGB", (noise, gradient, gradient.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT)))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    images_import(project=project, sources=[ImageSource("heavy.jpg", lambda: buffer.getvalue())])
    image = Image.objects.get(project=project)
    labels = list(project.labels.all())
    rng = random.Random(5)
    boxes = []
    for _ in range(500):
        w, h = rng.uniform(40, 600), rng.uniform(40, 600)
        boxes.append(
            Box(
                image=image,
                label=rng.choice(labels),
                x=rng.uniform(0, 6000 - w),
                y=rng.uniform(0, 4000 - h),
                w=w,
                h=h,
                author=user,
            )
        )
    Box.objects.bulk_create(boxes)
    print(f"heavy image {image.width}×{image.height}, {len(buffer.getvalue()) / 1e6:.1f} MB, 500 boxes")
    return project, image.id


# ---- measurements ---------------------------------------------------------------------------------


def _submit_times(page, count: int, draw_first: bool, settle: bool) -> tuple[list[float], list[float]]:
    in_page, outside = [], []
    for i in range(count):
        before = page.evaluate("twinlabel.store.image.id")
        if draw_first:
            page.mouse.move(300 + i % 7 * 10, 300)
            page.mouse.down()
            page.mouse.move(420, 400, steps=3)
            page.mouse.up()
        if settle:
            page.wait_for_selector("#save-status[data-status=saved]")
            page.wait_for_timeout(150)  # and let the prefetch of the next image finish, as a person would
        start = time.perf_counter()
        page.keyboard.press("Enter")
        page.wait_for_function(
            f"twinlabel.store.image && twinlabel.store.image.id !== {before} && !twinlabel.session.busy", polling="raf"
        )
        outside.append((time.perf_counter() - start) * 1000)
        in_page.append(page.evaluate("twinlabel.timings.at(-1).ms"))
    return in_page, outside


def _report_latency(page, url, project, args, vendor):
    from bench._util import write_result

    start = time.perf_counter()
    page.goto(f"{url}/projects/{project.id}/annotate/")
    page.wait_for_selector("#annotate-app.ready")
    first_load = (time.perf_counter() - start) * 1000
    _submit_times(page, 3, draw_first=False, settle=True)  # warm up
    settled, settled_outside = _submit_times(page, args.submits, draw_first=True, settle=True)
    flushed, flushed_outside = _submit_times(page, args.submits, draw_first=True, settle=False)
    figures = {
        "images": args.images,
        "submits": args.submits,
        "database": vendor,
        "page_load_to_interactive_ms": round(first_load, 1),
        "enter_to_next_interactive_ms": _summary(settled),
        "enter_to_next_interactive_with_pending_save_ms": _summary(flushed),
        "enter_to_next_seen_by_playwright_ms": _summary(settled_outside),
        "enter_to_next_with_pending_save_seen_by_playwright_ms": _summary(flushed_outside),
        "target_median_ms": 150,
        "label_studio_1_23_2": {
            "page_load_ms": [2000, 2200],
            "get_task_median_ms": 96,
            "post_annotation_median_ms": 220,
        },
        "browser": "Debian chromium, headless, --disable-gpu",
    }
    print(f"page load to interactive: {first_load:.0f} ms")
    print(
        f"Enter → next image interactive: median {figures['enter_to_next_interactive_ms']['median']} ms "
        f"(with a pending save flushed first: {figures['enter_to_next_interactive_with_pending_save_ms']['median']} ms)"
        f" over {args.submits} submits each, {args.images} images; target < 150 ms"
    )
    write_result(f"annotate_latency_{vendor}", figures)


def _report_heavy(page, url, heavy, args):
    from bench._util import write_result

    project, image_id = heavy
    start = time.perf_counter()
    page.goto(f"{url}/projects/{project.id}/annotate/?image={image_id}")
    page.wait_for_selector("#annotate-app.ready")
    load_ms = (time.perf_counter() - start) * 1000
    assert page.evaluate("twinlabel.store.boxes.length") == 500
    # Grab the middle of the largest box, so that Alt+drag moves it (the smallest box under the
    # pointer is the one moved; the largest box's middle may lie in a smaller one: take what we get).
    grab = page.evaluate("""() => {
        const b = [...twinlabel.store.boxes].sort((p, q) => q.w * q.h - p.w * p.h)[0];
        const p = twinlabel.view.viewport.toScreen(b.x + b.w / 2, b.y + b.h / 2);
        const r = twinlabel.view.overlay.getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }""")
    page.evaluate("twinlabel.view.perf.enabled = true")
    page.mouse.move(*grab)
    page.keyboard.down("Alt")
    page.mouse.down()
    for i in range(1, args.moves + 1):  # a slow circle-ish path, one pointer event per step
        page.mouse.move(grab[0] + 150 * (i / args.moves), grab[1] + 60 * ((i % 40) / 40))
    page.mouse.up()
    page.keyboard.up("Alt")
    samples = page.evaluate("twinlabel.view.perf.samples")
    page.evaluate("twinlabel.view.perf.enabled = false")
    assert samples, "no pointer-move samples were recorded"
    per_event = [s["handler"] + s["render"] for s in samples]
    figures = {
        "image": "6000×4000 JPEG",
        "boxes": 500,
        "pointer_moves": args.moves,
        "frames_measured": len(samples),
        "per_move_handler_plus_render_ms": _summary(per_event),
        "per_move_handler_ms": _summary([s["handler"] for s in samples]),
        "per_move_render_ms": _summary([s["render"] for s in samples]),
        "event_to_frame_drawn_latency_ms": _summary([s["latency"] for s in samples]),
        "page_load_to_interactive_ms": round(load_ms, 1),
        "target_median_ms": 16,
        "browser": "Debian chromium, headless, --disable-gpu (software raster)",
    }
    print(
        f"heavy image: page load to interactive {load_ms:.0f} ms; dragging a box among 500: median "
        f"{figures['per_move_handler_plus_render_ms']['median']} ms per pointer move (handler + frame), "
        f"p95 {figures['per_move_handler_plus_render_ms']['p95']} ms; event → frame drawn median "
        f"{figures['event_to_frame_drawn_latency_ms']['median']} ms; target < 16 ms"
    )
    write_result("annotate_heavy_image", figures)


def _summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }


if __name__ == "__main__":
    main()
