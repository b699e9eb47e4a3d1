"""Load: simulated annotators against the real web server (bin/web, gunicorn) on PostgreSQL while a
real pretraining runs on a real worker (bin/worker). Loopback only; bounded in count and time.

    DATABASE_URL=postgres://... python -m bench.load [--annotators 20] [--seconds 60] [--images 10000]

Each annotator, with its own token and a kept-alive connection, loops: POST queue/next, PUT
annotations (1 box + 2 tags), POST submit. Reports requests/s, images/s, p50/p95/p99 per request
kind and overall, the error count (any non-2xx or failed request), and whether the pretraining was
running through the window (its status and step before and after). Target: 0 errors, p95 < 100 ms.

With ``--think``, how annotators arrive matters (``--arrivals``): ``staggered`` (the default) starts
each annotator at a random moment of the first think period and draws each think time uniformly from
0.5-1.5x ``--think`` (the same mean; seeded), as independent people work and as load tools model them
(Locust's ``between``); ``lockstep`` starts all of them at once and waits exactly ``--think``, so the
annotators' requests keep arriving in bursts of up to ``--annotators`` at once (a worst case: twenty
people pressing submit in the same millisecond every two seconds). Both are reported apart.

A fresh project of ``--images`` image rows (bulk rows sharing one small PNG) is built each run; the
pretraining runs on a second project of 64 real small images with a config that outlasts the window,
and is cancelled at the end. Broker: Redis (CELERY_BROKER_URL, default redis://127.0.0.1:6379/11).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

KINDS = ("queue_next", "put_annotations", "submit")
PRETRAIN_CONFIG = {"resolution": 32, "epochs": 1000, "batch_size": 16, "projector": [64], "warmup_epochs": 0}


def main() -> None:
    load_start = os.getloadavg()  # what else ran on the machine: measured, not assumed
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=20, help="simulated annotators (1-100)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the window (1-600)")
    parser.add_argument("--images", type=int, default=10_000, help="image rows in the project (100-200000)")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn processes (3 suits 2 cores)")
    parser.add_argument("--web-threads", type=int, default=8, help="threads per gunicorn process")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds each annotator waits after each image (0: back to back, the worst case)",
    )
    parser.add_argument(
        "--arrivals",
        choices=("staggered", "lockstep"),
        default="staggered",
        help="with --think: random start and think of 0.5-1.5x (staggered), or all at once (lockstep)",
    )
    parser.add_argument(
        "--worker-threads", type=int, default=1, help="torch threads of the pretraining worker (OMP_NUM_THREADS)"
    )
    args = parser.parse_args()
    if not (1 <= args.annotators <= 100 and 1 <= args.seconds <= 600 and 100 <= args.images <= 200_000):
        parser.error("out of bounds: --annotators 1-100, --seconds 1-600, --images 100-200000")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(
            "bench/load.py measures the deployed setup: set DATABASE_URL=postgres://... (PostgreSQL); "
            f"got {url or 'nothing (the embedded SQLite)'}."
        )
    broker = os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._util import django_setup, machine_load, write_result

    work = django_setup(MODEL_DIR=str(Path(tempfile.mkdtemp(prefix="twinlabel-load-models-"))))
    from django.db import connection

    from tests import procs

    project, labels, tokens = _build(args.images, args.annotators)
    pretrain_project = _pretrain_project()
    connection.close()
    env = procs.service_env(
        MEDIA_ROOT=os.environ["MEDIA_ROOT"],
        TWINLABEL_VAR_DIR=os.environ["TWINLABEL_VAR_DIR"],
        MODEL_DIR=os.environ["MODEL_DIR"],
        CELERY_BROKER_URL=broker,
        WEB_ACCESS_LOG="/dev/null",
    )
    web_env = {**env, "WEB_WORKERS": str(args.web_workers), "WEB_THREADS": str(args.web_threads)}
    port = procs.free_port()
    base = f"http://127.0.0.1:{port}"
    worker_env = {**env, "OMP_NUM_THREADS": str(args.worker_threads), "MKL_NUM_THREADS": str(args.worker_threads)}
    with (
        procs.worker(worker_env, queues="default,gpu") as worker,
        procs.running(["bin/web"], {**web_env, "BIND": f"127.0.0.1:{port}"}) as web,
    ):
        web.wait_for(lambda: procs._answers(base + "/healthz"), 90, "web server")
        run = _pretrain_start(pretrain_project, worker)
        before = _run_state(run.id)
        cpu_before = _cpu(web.process.pid, worker.process.pid)
        sampler = WaitSampler(args.seconds)
        sampler.start()
        results = _load(port, project.id, labels, tokens, args.seconds, args.think, args.arrivals)
        sampler.join(10)
        cpu = {k: round(v - cpu_before[k], 1) for k, v in _cpu(web.process.pid, worker.process.pid).items()}
        after = _run_state(run.id)
        _pretrain_stop(run)
    figures = _figures(results, args, before, after)
    figures["cpu_seconds_in_window"] = cpu
    figures["load_average"] = machine_load(load_start)
    figures["postgresql_active_backends"] = sampler.summary()
    _print(figures)
    web = (args.web_workers, args.web_threads)
    suffix = (
        (f"_web{web[0]}x{web[1]}" if web != (3, 8) else "")
        + (f"_{args.annotators}annotators" if args.annotators != 20 else "")
        + (f"_think{args.think:g}s" + ("_lockstep" if args.arrivals == "lockstep" else "") if args.think else "")
    )
    write_result("load_postgresql" + suffix, figures)  # the default run is load_postgresql.json
    del work


def _build(images: int, annotators: int):
    """A project of ``images`` bulk rows sharing one real PNG, and ``annotators`` members with tokens."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotator.models import Image, Membership, Role
    from annotator.services.projects import project_create
    from annotator.services.status_counts import status_counts_recount
    from tests.factories import add_images, image_row

    stamp = time.time_ns()
    owner = get_user_model().objects.create_user(f"load-owner-{stamp}")
    project = project_create(name=f"bench-load-{stamp}", user=owner, labels=["cat", "dog", "bird", "fish"])
    (real,) = add_images(project, 1, size=(320, 240))
    template = Image.objects.get(pk=real)
    start = time.perf_counter()
    for chunk in range(1, images, 10_000):
        Image.objects.bulk_create(
            [
                image_row(
                    project,
                    i,
                    size=(320, 240),
                    size_bytes=template.size_bytes,
                    file=template.file.name,
                    thumbnail=template.thumbnail.name,
                )
                for i in range(chunk, min(chunk + 10_000, images))
            ],
            batch_size=2000,
        )
    status_counts_recount(project_id=project.id)
    print(f"project {project.id}: {images} image rows in {time.perf_counter() - start:.1f} s")
    tokens = []
    for k in range(annotators):
        user = get_user_model().objects.create_user(f"load-{stamp}-{k}")
        Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
        tokens.append(Token.objects.create(user=user).key)
    return project, list(project.labels.values_list("id", flat=True)), tokens


def _pretrain_project():
    from django.contrib.auth import get_user_model

    from annotator.services.projects import project_create
    from tests.factories import add_images

    owner = get_user_model().objects.create_user(f"load-trainer-{time.time_ns()}")
    project = project_create(name=f"bench-load-pretrain-{time.time_ns()}", user=owner, labels=["a", "b"])
    add_images(project, 64, size=(64, 64))
    return project


def _pretrain_start(project, worker):
    from labeling.models import RunStatus, TrainingRun
    from labeling.services import pretrain_start

    run = pretrain_start(project=project, config=PRETRAIN_CONFIG)
    deadline = time.monotonic() + 180
    while True:  # wait until it really trains: running, with steps being taken
        run = TrainingRun.objects.get(pk=run.pk)
        if run.status == RunStatus.RUNNING and run.step > 0:
            return run
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING) or time.monotonic() > deadline:
            raise SystemExit(f"the pretraining did not start: {run.status} {run.error}\n{worker.output[-3000:]}")
        time.sleep(1)


def _cpu(web_pid: int, worker_pid: int) -> dict[str, float]:
    """CPU seconds used so far: by gunicorn's processes, the worker's, every PostgreSQL backend on the
    machine (other users' too), this load generator, and the whole machine (all cores, all users)."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {"web": 0.0, "worker": 0.0, "postgresql_all": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        pgid, used = int(fields[2]), (int(fields[11]) + int(fields[12])) / tick
        if pgid == web_pid:
            totals["web"] += used
        elif pgid == worker_pid:
            totals["worker"] += used
        elif name.startswith("postgres"):
            totals["postgresql_all"] += used
    mine = os.times()
    totals["load_generator"] = mine.user + mine.system
    cpu_line = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    totals["machine_busy"] = (sum(map(int, cpu_line)) - int(cpu_line[3]) - int(cpu_line[4])) / tick
    return totals


def _run_state(run_id: int) -> dict:
    from labeling.models import TrainingRun

    run = TrainingRun.objects.get(pk=run_id)
    return {"status": run.status, "epoch": run.epoch, "step": run.step, "images_per_s": run.images_per_s}


def _pretrain_stop(run) -> None:
    from labeling.models import TrainingRun
    from labeling.services import run_cancel

    run_cancel(run=run)
    deadline = time.monotonic() + 60
    while TrainingRun.objects.get(pk=run.pk).status == "running" and time.monotonic() < deadline:
        time.sleep(0.5)


class WaitSampler(threading.Thread):
    """Every 0.2 s, the database's active backends by what they wait for (pg_stat_activity): CPU
    (no wait), a lock (a hot row), I/O, the client... Averages over the window say what dominates."""

    def __init__(self, seconds: float):
        super().__init__(daemon=True)
        self.seconds, self.samples, self.counts = seconds, 0, {}

    def run(self) -> None:
        from django.db import connection

        stop_at = time.monotonic() + self.seconds
        with connection.cursor() as cursor:
            while time.monotonic() < stop_at:
                # A backend waiting for a lock is named with the start of its statement (which table).
                cursor.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'running') || CASE WHEN "
                    "wait_event_type = 'Lock' THEN ' ' || left(query, 40) ELSE '' END, count(*) "
                    "FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
                    "AND pid <> pg_backend_pid() GROUP BY 1"
                )
                for what, n in cursor.fetchall():
                    self.counts[what] = self.counts.get(what, 0) + n
                self.samples += 1
                time.sleep(0.2)
        connection.close()

    def summary(self) -> dict:
        """Mean number of active backends per sample, by wait event."""
        return {
            what: round(n / max(self.samples, 1), 2)
            for what, n in sorted(self.counts.items(), key=lambda item: -item[1])
        }


class Annotator(threading.Thread):
    """One simulated annotator: next image, save 1 box + 2 tags, submit; until the window closes."""

    def __init__(
        self,
        port: int,
        project_id: int,
        labels: list[int],
        token: str,
        stop_at: float,
        think: float,
        *,
        staggered: bool = False,
        seed: int = 0,
    ):
        super().__init__(daemon=True)
        self.port, self.project_id, self.labels, self.stop_at, self.think = port, project_id, labels, stop_at, think
        self.staggered = staggered
        self.random = random.Random(seed)
        self.headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        self.errors: list[str] = []
        self.images = 0
        self.reconnects = 0
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, kind: str, method: str, path: str, payload: dict) -> dict | None:
        body = json.dumps(payload)
        start = time.perf_counter()
        for attempt in (1, 2):
            reused = self.connection.sock is not None
            try:
                self.connection.request(method, path, body, self.headers)
                response = self.connection.getresponse()
                raw = response.read()
                break
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as error:
                # gunicorn closes a kept-alive connection after 2 idle seconds (its --keep-alive); like
                # browsers and urllib3, send again once on a fresh connection when the old one was
                # closed under us. Counted apart; the time of both attempts counts.
                self.connection.close()
                if attempt == 1 and reused:
                    self.reconnects += 1
                    continue
                self.errors.append(f"{kind}: {type(error).__name__}: {error}")
                return None
            except (OSError, http.client.HTTPException) as error:
                self.connection.close()  # reconnects on the next request
                self.errors.append(f"{kind}: {type(error).__name__}: {error}")
                return None
        self.times[kind].append((time.perf_counter() - start) * 1000)
        if not 200 <= response.status < 300:
            self.errors.append(f"{kind}: {response.status} {raw[:200]!r}")
            return None
        return json.loads(raw)

    def run(self) -> None:
        box_label, tags = self.labels[0], self.labels[1:3]
        if self.think and self.staggered:
            self._wait(self.random.uniform(0, self.think))  # people do not all start in the same instant
        while time.monotonic() < self.stop_at:
            answer = self.call(
                "queue_next", "POST", f"/api/projects/{self.project_id}/queue/next/", {"order": "sequential"}
            )
            if answer is None:
                continue
            if answer["image"] is None:
                break  # the project is done
            image = answer["image"]["image"]
            state = self.call(
                "put_annotations",
                "PUT",
                f"/api/images/{image['id']}/annotations/",
                {
                    "version": image["version"],
                    "tags": tags,
                    "boxes": [{"label": box_label, "x": 10.0, "y": 12.0, "w": 40.0, "h": 30.0}],
                },
            )
            if state is None:
                continue
            if (
                self.call(
                    "submit", "POST", f"/api/images/{image['id']}/submit/", {"version": state["image"]["version"]}
                )
                is not None
            ):
                self.images += 1
            if self.think:
                self._wait(self.think * self.random.uniform(0.5, 1.5) if self.staggered else self.think)
        self.connection.close()

    def _wait(self, seconds: float) -> None:
        time.sleep(min(seconds, max(0.0, self.stop_at - time.monotonic())))


def _load(
    port: int,
    project_id: int,
    labels: list[int],
    tokens: list[str],
    seconds: float,
    think: float,
    arrivals: str = "staggered",
) -> dict:
    start = time.monotonic()
    annotators = [
        Annotator(port, project_id, labels, token, start + seconds, think, staggered=arrivals == "staggered", seed=i)
        for i, token in enumerate(tokens)
    ]
    for annotator in annotators:
        annotator.start()
    for annotator in annotators:
        annotator.join(seconds + 60)  # a request in flight at the end gets its 30 s timeout at most
    elapsed = time.monotonic() - start
    times = {kind: [t for a in annotators for t in a.times[kind]] for kind in KINDS}
    return {
        "elapsed_s": elapsed,
        "times": times,
        "errors": [e for a in annotators for e in a.errors],
        "images": sum(a.images for a in annotators),
        "reconnects": sum(a.reconnects for a in annotators),
        "stuck": sum(a.is_alive() for a in annotators),
    }


def _percentiles(values: list[float]) -> dict:
    if len(values) < 2:
        return {"count": len(values)}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "count": len(values),
        "p50_ms": round(cuts[49], 1),
        "p95_ms": round(cuts[94], 1),
        "p99_ms": round(cuts[98], 1),
        "max_ms": round(max(values), 1),
    }


def _figures(results: dict, args, before: dict, after: dict) -> dict:
    everything = [t for values in results["times"].values() for t in values]
    elapsed = results["elapsed_s"]
    overall = _percentiles(everything)
    return {
        "database": "postgresql",
        "annotators": args.annotators,
        "think_s": args.think,
        "arrivals": args.arrivals if args.think else "back to back",
        "window_s": args.seconds,
        "elapsed_s": round(elapsed, 1),
        "project_images": args.images,
        "web_workers": args.web_workers,
        "web_threads": args.web_threads,
        "requests": len(everything),
        "requests_per_s": round(len(everything) / elapsed, 1),
        "images_submitted": results["images"],
        "images_per_s": round(results["images"] / elapsed, 2),
        "latency": {**{kind: _percentiles(values) for kind, values in results["times"].items()}, "overall": overall},
        "errors": len(results["errors"]),
        "error_samples": results["errors"][:10],
        "resent_after_idle_close": results["reconnects"],
        "stuck_annotators": results["stuck"],
        "pretraining": {
            "before": before,
            "after": after,
            "worker_torch_threads": args.worker_threads,
            "config": PRETRAIN_CONFIG,
            "running_throughout": before["status"] == after["status"] == "running" and after["step"] > before["step"],
        },
        "target": "0 errors, p95 < 100 ms",
        "met": not results["errors"] and overall.get("p95_ms", 1e9) < 100,
        "note": "Loopback: the load generator (20 Python threads), gunicorn, PostgreSQL, Redis and the CPU "
        "pretraining all share the machine's cores, so the latencies include waiting for a core.",
    }


def _print(figures: dict) -> None:
    print(
        f"{figures['requests']} requests in {figures['elapsed_s']} s: {figures['requests_per_s']} req/s, "
        f"{figures['images_per_s']} images/s, {figures['errors']} errors"
    )
    for kind, p in figures["latency"].items():
        print(f"  {kind:>16}: " + ", ".join(f"{k} {v}" for k, v in p.items()))
    print(f"pretraining: {figures['pretraining']['before']} -> {figures['pretraining']['after']}")
    print(f"CPU seconds in the window: {figures['cpu_seconds_in_window']}")
    print(f"PostgreSQL active backends (mean per sample, by wait): {figures['postgresql_active_backends']}")
    print(f"target {figures['target']}: {'met' if figures['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
