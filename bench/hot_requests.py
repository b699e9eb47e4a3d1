"""The three requests every annotator makes per image (queue next, PUT annotations, submit), through
Django's whole stack in this process (test client: middleware, session, DRF), timed and profiled.

    python -m bench.hot_requests [--cycles 300] [--images 2000] [--top 25] [--suggestions 1]

A fresh embedded SQLite database under a temporary folder, or the database in DATABASE_URL. One
annotator works through ``--cycles`` images; after a warm-up of 20 cycles each request kind is timed
(median, p95), its queries counted, and the whole loop run again under cProfile: the functions with the
most cumulative and own time are printed and kept in the JSON, as the flame graph's table. No network
and no gunicorn: this isolates the server's own per-request cost (bench/load.py measures the deployed
setup under concurrency). Writes bench/results/hot_requests_<database>.json.

``--suggestions 1``: the model's requests instead. A current probe and detector run suggest a tag and
two boxes on every image (one confident, one drawn for a look). Per image: queue next, accept the
tag, accept the confident box, reject the other, submit. Every decision then runs the live trust
checks (labeling.trust: the confident rule and the show rule). The held-out counts are large, so
no label is ever withdrawn and every cycle does the same work. Writes
hot_requests_suggestions_<database>.json.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

KINDS = ("queue_next", "put_annotations", "submit")
SUGGESTION_KINDS = ("queue_next", "tag_accept", "box_accept", "box_reject", "submit")


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, int_options, machine_load, write_result

    args = int_options(cycles=300, images=2000, top=25, suggestions=0).parse_args()
    if not (20 <= args.cycles <= 5000 and args.cycles < args.images <= 200_000):
        sys.exit("out of bounds: --cycles 20-5000, --images above --cycles and at most 200000")
    django_setup(ALLOWED_HOSTS="testserver")
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    project, annotator, cat, dog = _build(args.images)
    kinds = SUGGESTION_KINDS if args.suggestions else KINDS
    if args.suggestions:
        _suggest(project, cat, dog)
    client = Client()
    client.force_login(annotator)

    def cycle(times: dict[str, list[float]] | None = None, queries: dict[str, int] | None = None) -> None:
        steps = (_suggestion_steps if args.suggestions else _steps)(client, project.id, cat, dog)
        for kind in kinds:
            # The log keeps the last 9,000 queries: once full, a capture would count none.
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter()
                response = next(steps)
                ms = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                sys.exit(f"{kind} answered {response.status_code}: {response.content[:300]!r}")
            if times is not None:
                times[kind].append(ms)
            if queries is not None:
                queries[kind] = len(captured)

    for _ in range(20):
        cycle()
    times: dict[str, list[float]] = {k: [] for k in kinds}
    queries: dict[str, int] = {}
    timed = args.cycles // 2
    for _ in range(timed):
        cycle(times, queries)
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    for _ in range(args.cycles - timed - 20 if args.cycles > timed + 20 else 1):
        cycle()
    profile.disable()
    profiled_s = time.perf_counter() - start
    stats = pstats.Stats(profile)
    figures = {
        "database": connection.vendor,
        "images": args.images,
        "timed_cycles": timed,
        "per_request_ms": {
            kind: {
                "median": round(statistics.median(v), 2),
                "p95": round(sorted(v)[int(0.95 * (len(v) - 1))], 2),
            }
            for kind, v in times.items()
        },
        "queries": queries,
        "requests_per_s_one_thread": round(len(kinds) * timed / (sum(sum(v) for v in times.values()) / 1000), 1),
        "profiled_s": round(profiled_s, 2),
        "profile_cumulative": _top(stats, "cumulative", args.top),
        "profile_own": _top(stats, "tottime", args.top),
        "load_average": machine_load(load_start),
    }
    for kind, v in figures["per_request_ms"].items():
        print(f"{kind:16s} median {v['median']:6.2f} ms  p95 {v['p95']:6.2f} ms  {queries[kind]} queries")
    print(f"one thread: {figures['requests_per_s_one_thread']} requests/s")
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.top)
    print(text.getvalue()[-6000:])
    write_result(f"hot_requests_{'suggestions_' if args.suggestions else ''}{connection.vendor}", figures)


def _steps(client, project_id: int, cat: int, dog: int):
    """One image: queue next, then PUT 1 box + 1 tag, then submit (each ``next`` sends one request)."""
    nxt = client.post(f"/api/projects/{project_id}/queue/next/", {}, content_type="application/json")
    yield nxt
    image = nxt.json()["image"]["image"]
    put = client.put(
        f"/api/images/{image['id']}/annotations/",
        {"version": image["version"], "tags": [dog], "boxes": [{"label": cat, "x": 1, "y": 1, "w": 3, "h": 3}]},
        content_type="application/json",
    )
    yield put
    yield client.post(
        f"/api/images/{image['id']}/submit/",
        {"version": put.json()["image"]["version"]},
        content_type="application/json",
    )


def _suggestion_steps(client, project_id: int, cat: int, dog: int):
    """One image: queue next, accept its dog tag, accept its confident cat box, reject the other box,
    submit (each ``next`` sends one request)."""
    nxt = client.post(f"/api/projects/{project_id}/queue/next/", {}, content_type="application/json")
    yield nxt
    state = nxt.json()["image"]
    image_id = state["image"]["id"]
    confident, drawn = sorted(state["box_suggestions"], key=lambda s: -s["score"])
    yield client.post(f"/api/images/{image_id}/suggestions/{dog}/accept/", {}, content_type="application/json")
    yield client.post(
        f"/api/images/{image_id}/box-suggestions/{confident['id']}/accept/", {}, content_type="application/json"
    )
    rejected = client.post(
        f"/api/images/{image_id}/box-suggestions/{drawn['id']}/reject/", {}, content_type="application/json"
    )
    yield rejected
    yield client.post(
        f"/api/images/{image_id}/submit/",
        {"version": rejected.json()["image"]["version"]},
        content_type="application/json",
    )


def _suggest(project, cat: int, dog: int) -> None:
    """A current probe run (dog suggested everywhere, confident) and detector run (a confident cat box
    and a cat box drawn for a look on every image), with held-out counts no decision here can pull
    under a bound."""
    from annotator.models import Image
    from labeling.models import BoxSuggestion, ProjectModelState, RunKind, RunStatus, Suggestion, TrainingRun

    many = {"predictions": 10**6, "correct": 10**6}
    sure = {"target": 0.9, "confident": True, "threshold": 0.7, **many}
    probe = TrainingRun.objects.create(
        project=project,
        kind=RunKind.PROBE,
        status=RunStatus.SUCCEEDED,
        metrics={"trust": {"labels": [{"label_id": dog, **sure}]}},
    )
    detector = TrainingRun.objects.create(
        project=project,
        kind=RunKind.DETECTOR,
        status=RunStatus.SUCCEEDED,
        metrics={"trust": {"labels": [{"label_id": cat, **sure, "shown_from": 0.4, "shown_counts": many}]}},
    )
    ProjectModelState.objects.update_or_create(project=project, defaults={"probe_run": probe, "detector_run": detector})
    ids = list(Image.objects.filter(project=project).values_list("id", flat=True))
    Suggestion.objects.bulk_create(
        [Suggestion(run=probe, image_id=i, label_id=dog, probability=0.9, predicted=True) for i in ids], batch_size=5000
    )
    BoxSuggestion.objects.bulk_create(
        [
            BoxSuggestion(
                run=detector, image_id=i, label_id=cat, x=x, y=5, w=20, h=20, score=score, predicted=confident
            )
            for i in ids
            for x, score, confident in ((5, 0.9, True), (60, 0.5, False))
        ],
        batch_size=5000,
    )


def _build(n_images: int):
    from django.contrib.auth import get_user_model

    from annotator.models import Image, LabelClass, Membership, Role
    from annotator.services.projects import project_create
    from annotator.services.status_counts import status_counts_recount
    from tests.factories import image_row

    users = get_user_model()
    tag = time.time_ns()
    owner = users.objects.create_user(f"hot-owner-{tag}", password="x")
    annotator = users.objects.create_user(f"hot-ann-{tag}", password="x")
    project = project_create(name=f"bench-hot-{tag}", user=owner, labels=["cat", "dog"])
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    Image.objects.bulk_create([image_row(project, i) for i in range(n_images)], batch_size=2000)
    status_counts_recount(project_id=project.id)
    cat, dog = LabelClass.objects.filter(project=project).order_by("order").values_list("id", flat=True)
    return project, annotator, cat, dog


def _top(stats: pstats.Stats, key: str, n: int) -> list[dict]:
    rows = []
    for (file, line, name), (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(file).name}:{line}({name})",
                "calls": calls,
                "own_s": round(own, 4),
                "cumulative_s": round(cumulative, 4),
            }
        )
    field = "cumulative_s" if key == "cumulative" else "own_s"
    return sorted(rows, key=lambda r: -r[field])[:n]


if __name__ == "__main__":
    main()
