"""A worker yields to the web server on a shared host: bin/worker lowers its CPU and I/O priority,
and each worker process sets its torch threads from TRAIN_THREADS (issue 20)."""

import os
import subprocess
from pathlib import Path

import pytest
import torch

from twinlabel.settings import default_train_threads
from labeling.apps import _worker_threads

ROOT = Path(__file__).resolve().parent.parent.parent


def _start(tmp_path, own_session: bool = False, **env) -> str:
    # bin/worker execs "$PYTHON -m celery ...": a stand-in reports the priorities it was started with
    # (and its autogroup's, when it has one).
    fake = tmp_path / "python"
    # Some kernels (CI's) show /proc/<pid>/autogroup but read it empty: the third line is then "none".
    fake.write_text('#!/bin/sh\nnice\nionice -p $$\ng=$(cat /proc/$$/autogroup 2>/dev/null)\necho "${g:-none}"\n')
    fake.chmod(0o755)
    result = subprocess.run(
        [str(ROOT / "bin" / "worker")],
        env={**os.environ, "PYTHON": str(fake), **env},
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=own_session,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_worker_runs_at_a_lower_cpu_and_io_priority(tmp_path):
    base = os.nice(0)
    nice, io, _ = _start(tmp_path).splitlines()
    assert int(nice) == min(19, base + 10)
    assert io == "best-effort: prio 7"


def _autogroup() -> str:
    try:
        return Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        return ""


def test_a_worker_in_a_session_of_its_own_lowers_its_autogroup_too(tmp_path):
    """With autogroups on, the scheduler shares the CPU equally between sessions whatever the nice
    of their processes: a worker started in its own session (bin/up, supervisors) sets its group's
    nice, which moves nobody else's (the group holds the worker alone)."""
    if not _autogroup():
        pytest.skip("no readable autogroup on this kernel: the plain nice is all there is (checked above)")
    mine = _autogroup().split()[-1]
    *_, group = _start(tmp_path, own_session=True, WORKER_NICE="7").splitlines()
    assert group.endswith("nice 7")
    assert _autogroup().split()[-1] == mine  # the test's own group is as it was
    *_, shared = _start(tmp_path, WORKER_NICE="7").splitlines()  # in the test's session: group untouched
    assert shared.split()[-1] == mine


def test_worker_nice_0_keeps_the_priorities(tmp_path):
    nice, io, _ = _start(tmp_path, WORKER_NICE="0").splitlines()
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
