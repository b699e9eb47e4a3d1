"""What every benchmark shares: where results go and what describes the machine."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    info = {
        "host": platform.node(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        info["device"] = "cpu"
    return info


def machine_load(start: tuple[float, ...]) -> dict:
    """What else ran on the machine while a benchmark did, measured rather than described: the 1-, 5- and
    15-minute load averages (``os.getloadavg()``) at its start (taken by the caller) and now, and the CPU
    count. A load above the count means other work shared the cores, so times are upper bounds."""
    return {"start": rounded(start), "end": rounded(os.getloadavg()), "cpus": os.cpu_count()}


def rounded(values: tuple[float, ...]) -> list[float]:
    return [round(v, 2) for v in values]


def write_result(name: str, figures: dict) -> Path:
    """Write ``bench/results/<name>.json`` with the figures, the machine and the commit."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _git_commit(),
        "machine": machine(),
        "figures": figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(RESULTS.parent.parent)}")
    return path


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    """The short commit, with "+dirty" when code differs from it (changed or new files outside
    bench/results/, whose own figures change with every run): a figure then came from a tree that
    no commit holds."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--", ":/", ":(exclude,top)bench/results")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if changed else "")


def django_setup(**env: str) -> Path:
    """Django for a benchmark: a fresh embedded database and media folder under a new temporary
    directory (the database in DATABASE_URL when that is set), migrated. ``env`` sets more
    variables before the settings load. Returns the temporary directory."""
    import sys
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="twinlabel-bench-"))
    os.environ.setdefault("TWINLABEL_VAR_DIR", str(work / "var"))
    os.environ["MEDIA_ROOT"] = str(work / "media")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinlabel.settings")
    os.environ.update(env)
    sys.path.insert(0, str(RESULTS.parent.parent))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return work


def browser_log_in(page, url: str, username: str, password: str) -> None:
    """Log in through the real login page in a Playwright page (the browser benchmarks)."""
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def int_options(**defaults: int | list[int]) -> argparse.ArgumentParser:
    """A parser with an integer option ``--name`` for each keyword (underscores become dashes),
    defaulting to its value; a list default makes the option take one or more integers."""
    parser = argparse.ArgumentParser()
    for name, default in defaults.items():
        nargs = "+" if isinstance(default, list) else None
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, nargs=nargs, default=default)
    return parser


def photo_options(parser: argparse.ArgumentParser, verb: str) -> argparse.ArgumentParser:
    """The options of the benchmarks that can take camera photos (bench._photos) instead of small
    images: --photos, --photo-dir and --name."""
    parser.add_argument("--photos", type=int, default=0, help=f"{verb} this many 12-megapixel JPEGs instead")
    parser.add_argument("--photo-dir", type=Path, help="where the photos are (made there when missing)")
    parser.add_argument("--name", help="bench/results/<name>.json")
    return parser


def median_get_ms(client, url: str, repeat: int) -> float:
    """The median time of ``repeat`` GETs of ``url`` with a Django test client, in ms, after one
    warm-up request that must answer 200."""
    response = client.get(url)  # warm up
    assert response.status_code == 200, (url, response.status_code, response.content[:200])
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def scaling_figures(database: str, figures: dict[int, dict[str, float]]) -> dict:
    """The latency benchmarks' figures over sizes: the database, the medians by size and, for each
    figure, its value at the largest size over its value at the smallest (``ratio``)."""
    small, large = figures[min(figures)], figures[max(figures)]
    return {
        "database": database,
        "median_ms": {str(k): v for k, v in figures.items()},
        "ratio": {name: round(large[name] / small[name], 2) for name in small},
    }


def pretrain_timed(config, pool: np.ndarray, labeled: np.ndarray, runtime) -> tuple[object, float]:
    """Barlow Twins pretraining on the pool and the labeled images together (never the test set):
    (the run, its seconds)."""
    import numpy as np

    from labeling.ml.train import pretrain

    start = time.perf_counter()
    run = pretrain(config, np.concatenate([pool, labeled]), runtime)
    return run, time.perf_counter() - start
