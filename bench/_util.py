"""What every benchmark shares: where results go and what describes the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

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
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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
