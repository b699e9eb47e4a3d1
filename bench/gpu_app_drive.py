"""Drive a running Twinlabel (bin/web + bin/worker) through its REST API only, timing each step:
create a project, upload generated scenes, import the labels of a share of them (Twinlabel JSON),
pretrain, refit the probe, read the suggestions. Standard library only: it runs on a lent GPU
machine beside the app that bench/gpu_app.sh installed there.

Meanwhile an annotator's request (the queue's next image, POST .../queue/next/) is timed every
0.2 s: for 10 s before the pretraining (idle) and while the runs train, so the result says whether
the trainer slows an annotator down (``annotator_latency_ms``: p50 / p95 / max per phase).

    python3 bench/gpu_app_drive.py --url http://127.0.0.1:8000 --token KEY [--images 2000] [--epochs 20]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--labeled", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu_app.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from annotator.demo.scenes import LABELS, render_scene  # Pillow only (no Django)

    api = Api(args.url, args.token)
    steps: dict[str, float] = {}
    t = time.perf_counter()
    project = api.json("POST", "/api/projects/", {"name": f"gpu-app-{int(time.time())}", "labels": list(LABELS)})
    scenes, batch = [], []
    for i in range(args.images):
        scene = render_scene(i, seed=11, size=(256, 256))
        buffer = io.BytesIO()
        scene.image.convert("RGB").save(buffer, "JPEG", quality=90)
        scenes.append((f"scene-{i:06d}.jpg", sorted(scene.labels)))
        batch.append((scenes[-1][0], buffer.getvalue()))
        if len(batch) == 50 or i == args.images - 1:
            answer = api.upload(f"/api/projects/{project['id']}/images/", batch)
            assert len(answer["imported"]) == len(batch), answer
            batch = []
    steps["create_and_upload_s"] = time.perf_counter() - t
    t = time.perf_counter()
    labeled = scenes[: max(20, int(len(scenes) * args.labeled))]
    document = {
        "format": "twinlabel",
        "version": 1,
        "labels": [{"name": n} for n in LABELS],
        "images": [
            {"file_name": name, "width": 256, "height": 256, "status": "submitted", "boxes": [], "tags": tags}
            for name, tags in labeled
        ],
    }
    api.upload(
        f"/api/projects/{project['id']}/import/",
        [("labels.json", json.dumps(document).encode())],
        fields={"format": "json"},
    )
    steps["import_labels_s"] = time.perf_counter() - t
    sampler = LatencySampler(api, f"/api/projects/{project['id']}/queue/next/")
    sampler.start()
    time.sleep(10)  # the idle baseline
    sampler.phase = "training"
    runs = {}
    for kind, body in (
        ("pretrain", {"kind": "pretrain", "config": {"epochs": args.epochs}}),
        ("probe", {"kind": "probe"}),
    ):
        t = time.perf_counter()
        # A pretraining queues its own probe fit when it ends: wait for that one rather than ask again.
        queued = [
            r
            for r in api.json("GET", f"/api/projects/{project['id']}/runs/")["runs"]
            if kind == "probe" and r["kind"] == "probe" and r["id"] > runs["pretrain"]["id"]
        ]
        run = queued[0] if queued else api.json("POST", f"/api/projects/{project['id']}/runs/", body)
        run = api.wait(run["id"], args.timeout)
        steps[f"{kind}_s"] = time.perf_counter() - t
        runs[kind] = {k: run.get(k) for k in ("id", "status", "device", "images_per_s", "epoch", "epochs", "error")}
        print(
            f"{kind}: {run['status']} in {steps[f'{kind}_s']:.1f} s on {run.get('device')} "
            f"({run.get('images_per_s')} images/s)",
            flush=True,
        )
        if run["status"] != "succeeded":
            break
    sampler.stop()
    suggestions = api.json("GET", f"/api/projects/{project['id']}/suggestions/")
    result = {
        "images": args.images,
        "labeled": len(labeled),
        "epochs": args.epochs,
        "steps_s": {k: round(v, 2) for k, v in steps.items()},
        "runs": runs,
        "suggestions_first_page": len(suggestions.get("results", [])) if isinstance(suggestions, dict) else None,
        "annotator_latency_ms": sampler.summary(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if any(r["status"] != "succeeded" for r in runs.values()) or len(runs) < 2:
        raise SystemExit("a run did not succeed")


class LatencySampler(threading.Thread):
    """Times one POST {} every ``every`` seconds, filed under the current phase."""

    def __init__(self, api: Api, path: str, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.api, self.path, self.every = api, path, every
        self.phase = "idle"
        self.samples: dict[str, list[float]] = {}
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            phase, t0 = self.phase, time.perf_counter()
            try:
                self.api.json("POST", self.path, {})
            except (SystemExit, OSError):
                self.errors += 1
            else:
                self.samples.setdefault(phase, []).append((time.perf_counter() - t0) * 1000)
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)

    def summary(self) -> dict:
        def figures(values: list[float]) -> dict:
            ordered = sorted(values)
            return {
                "n": len(ordered),
                "p50": round(statistics.median(ordered), 1),
                "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
                "max": round(ordered[-1], 1),
            }

        return {**{phase: figures(v) for phase, v in self.samples.items() if v}, "errors": self.errors}


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.headers = url.rstrip("/"), {"Authorization": f"Token {token}"}

    def _send(self, method: str, path: str, body: bytes | None, content_type: str | None) -> dict:
        headers = {**self.headers, **({"Content-Type": content_type} if content_type else {})}
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise SystemExit(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None

    def json(self, method: str, path: str, data: dict | None = None) -> dict:
        body = json.dumps(data).encode() if data is not None else None
        return self._send(method, path, body, "application/json" if body else None)

    def upload(self, path: str, files: list[tuple[str, bytes]], fields: dict[str, str] | None = None) -> dict:
        from bench._http import multipart  # standard library only; main() put the repository on the path

        return self._send("POST", path, *multipart(files, fields))

    def wait(self, run_id: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.json("GET", f"/api/runs/{run_id}/")
            if run["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
                return run
            time.sleep(2)


if __name__ == "__main__":
    main()
