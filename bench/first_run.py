"""The first run, timed: what `make run` does (migrate, `manage.py demo`, `bin/up`), in a fresh
``TWINLABEL_VAR_DIR`` on a free port, nothing clicked. It waits for the demo's first probe fit to
write suggestions and reports

- ``seconds_to_suggestions``: from the first command to the first suggestion rows (issue 13: <= 300 s);
- ``heldout_map``: the mAP of the suggested probabilities on the demo's unlabeled images, which the
  probe never trained on (their true labels come from the scene generator; target >= 0.6);
- ``confident_precision``: the precision of the suggestions the app marks as predicted (pre-ticked,
  in Accept all) on those images (target >= 0.85), with how many there are.

    python -m bench.first_run [--timeout 900]

Needs the venv (`make venv`) and nothing else; leaves the temporary folder behind only with --keep.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from annotator.demo.scenes import LABELS, render_scene
from bench._util import machine_load, write_result
from labeling.ml.metrics import evaluate

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _suggestions(db: Path) -> list[tuple[str, str, float, bool]]:
    """(image name, label name, probability, predicted) of the current probe run's suggestions."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return []
    try:
        return con.execute(
            "SELECT i.original_name, l.name, s.probability, s.predicted FROM labeling_suggestion s "
            "JOIN labeling_projectmodelstate m ON m.probe_run_id = s.run_id "
            "JOIN annotator_image i ON i.id = s.image_id JOIN annotator_labelclass l ON l.id = s.label_id"
        ).fetchall()
    except sqlite3.OperationalError:
        return []  # not migrated yet
    finally:
        con.close()


def quality(rows: list[tuple[str, str, float, bool]], seed: int, size: int) -> dict:
    by_image: dict[str, dict[str, tuple[float, bool]]] = {}
    for name, label, p, predicted in rows:
        by_image.setdefault(name, {})[label] = (p, bool(predicted))
    names = sorted(by_image)
    truth = np.zeros((len(names), len(LABELS)), bool)
    scores = np.zeros((len(names), len(LABELS)), np.float32)
    predicted = np.zeros((len(names), len(LABELS)), bool)
    for r, name in enumerate(names):
        index = int(re.search(r"(\d+)", name).group(1))
        labels = render_scene(index, seed=seed, size=(size, size)).labels
        for c, label in enumerate(LABELS):
            truth[r, c] = label in labels
            scores[r, c], predicted[r, c] = by_image[name].get(label, (0.0, False))
    tp = int((truth & predicted).sum())
    shown = int(predicted.sum())
    return {
        "images": len(names),
        "heldout_map": evaluate(truth, scores, np.full(len(LABELS), 0.5)).map,
        "confident_suggestions": shown,
        "confident_precision": tp / shown if shown else None,
        "labels_per_image_suggested": float(predicted.sum(1).mean()) if len(names) else None,
        "labels_per_image_true": float(truth.sum(1).mean()) if len(names) else None,
        "chance_map": float(truth.mean(0).mean()) if len(names) else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    var = Path(tempfile.mkdtemp(prefix="twinlabel-first-run-"))
    env = {
        **os.environ,
        "TWINLABEL_VAR_DIR": str(var),
        "BIND": f"127.0.0.1:{_free_port()}",
        "PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    load = os.getloadavg()
    t0 = time.monotonic()
    up = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "manage.py", "demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        up = subprocess.Popen(
            [sys.executable, "bin/up"],
            cwd=ROOT,
            env=env,
            stdout=open(var / "up.log", "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        db = var / "db.sqlite3"
        rows: list = []
        while time.monotonic() - t0 < args.timeout and not rows:
            time.sleep(5)
            rows = _suggestions(db)
        seconds = time.monotonic() - t0 if rows else None
    finally:
        if up is not None:
            os.killpg(up.pid, signal.SIGINT)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
    figures = {
        "seconds_to_suggestions": None if seconds is None else round(seconds, 1),
        "timeout_s": args.timeout,
        **(quality(rows, seed=0, size=256) if rows else {}),
        "targets": {"seconds_to_suggestions_le_300": seconds is not None and seconds <= 300},
        "load_average": machine_load(load),
        "note": "the demo's unlabeled images are held out from the probe (they were seen, unlabeled, by "
        "pretraining, as in the app)",
    }
    if rows:
        figures["targets"].update(
            {
                "heldout_map_ge_0.6": figures["heldout_map"] >= 0.6,
                "confident_precision_ge_0.85": (figures["confident_precision"] or 0) >= 0.85,
            }
        )
    print(figures)
    write_result("first_run_cpu", figures)
    if not args.keep:
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
