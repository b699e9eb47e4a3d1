"""A worker yields to the web server on a shared host: bin/worker lowers its CPU and I/O priority,
and each worker process sets its torch threads from TRAIN_THREADS (issue 20)."""

import os
import subprocess
from pathlib import Path

import torch

from twinlabel.settings import default_train_threads
from labeling.apps import _worker_threads

ROOT = Path(__file__).resolve().parent.parent.parent


def _start(tmp_path, **env) -> str:
    # bin/worker execs "$PYTHON -m celery ...": a stand-in reports the priorities it was started with.
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nnice\nionice -p $$\n")
    fake.chmod(0o755)
    result = subprocess.run(
        [str(ROOT / "bin" / "worker")],
        env={**os.environ, "PYTHON": str(fake), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_worker_runs_at_a_lower_cpu_and_io_priority(tmp_path):
    base = os.nice(0)
    nice, io = _start(tmp_path).splitlines()
    assert int(nice) == min(19, base + 10)
    assert io == "best-effort: prio 7"


def test_worker_nice_0_keeps_the_priorities(tmp_path):
    nice, io = _start(tmp_path, WORKER_NICE="0").splitlines()
    assert int(nice) == os.nice(0)
    assert io != "best-effort: prio 7"


def test_the_default_leaves_the_web_a_core_when_it_shares_the_host():
    assert [default_train_threads(cores=n, web_on_host=True) for n in (1, 2, 16)] == [1, 1, 15]
    assert [default_train_threads(cores=n, web_on_host=False) for n in (1, 2, 16)] == [1, 2, 16]


def test_a_worker_process_sets_its_torch_threads_from_the_setting(settings):
    before = torch.get_num_threads()
    settings.TRAIN_THREADS = 1 if before != 1 else 2
    try:
        _worker_threads()
        assert torch.get_num_threads() == settings.TRAIN_THREADS
    finally:
        torch.set_num_threads(before)
