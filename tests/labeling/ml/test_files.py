"""Files written whole or not at all, on a disk that is full: the kernel's own ENOSPC, from /dev/full
standing in for the temporary file (a real write error, not a patched function)."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch

from labeling.ml.files import disk_full, replaced


def full_at(path):
    """The next write to ``path`` by ``replaced`` meets a full disk."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.symlink_to("/dev/full")
    return tmp


def test_a_file_is_replaced_in_one_step_and_only_when_written(tmp_path):
    path = tmp_path / "a" / "probe.npz"
    with replaced(path) as f:
        np.savez(f, x=np.arange(3))
    assert np.load(path)["x"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError), replaced(path) as f:
        f.write(b"half a file")
        raise ValueError("the writer failed")
    assert np.load(path)["x"].tolist() == [0, 1, 2]
    assert os.listdir(path.parent) == ["probe.npz"]


@pytest.mark.parametrize("writer", ["torch", "numpy", "bytes"])
def test_a_full_disk_keeps_the_old_file_removes_the_partial_one_and_says_enospc(tmp_path, writer):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"the last good checkpoint")
    tmp = full_at(path)
    write = {
        "torch": lambda f: torch.save({"w": torch.zeros(100_000)}, f),
        "numpy": lambda f: np.save(f, np.zeros(100_000)),
        "bytes": lambda f: f.write(b"x" * 100_000),
    }[writer]
    with pytest.raises(OSError) as raised, replaced(path) as f:
        write(f)
        f.flush()
    assert raised.value.errno == errno.ENOSPC
    assert disk_full(raised.value) is raised.value
    assert path.read_bytes() == b"the last good checkpoint"
    assert not tmp.exists() and not tmp.is_symlink()


def test_disk_full_finds_the_os_error_behind_another():
    def raise_from(cause):
        try:
            raise cause
        except OSError as exc:
            raise RuntimeError("the checkpoint could not be written") from exc

    with pytest.raises(RuntimeError) as raised:
        raise_from(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert disk_full(raised.value).errno == errno.EDQUOT
    with pytest.raises(RuntimeError) as other:
        raise_from(OSError(errno.EACCES, "Permission denied"))
    assert disk_full(other.value) is None and disk_full(None) is None


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MB filesystem."""
    from tests.full_disk import small_disk as tmpfs

    with tmpfs(tmp_path / "disk", "4m") as root:
        yield root


def test_on_a_disk_that_fills_the_failed_write_gives_its_space_back(small_disk):
    path = small_disk / "checkpoint.pt"
    with replaced(path) as f:
        torch.save({"w": torch.ones(1000)}, f)
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * (free - 200_000))  # 200 kB left
    left = os.statvfs(small_disk).f_bavail
    with pytest.raises(OSError) as raised, replaced(path) as f:
        torch.save({"w": torch.ones(250_000)}, f)  # a 1 MB checkpoint
    assert raised.value.errno == errno.ENOSPC  # torch itself raised RuntimeError("unexpected pos ...")
    assert os.statvfs(small_disk).f_bavail == left  # the partial file took its space with it
    assert torch.load(path, weights_only=True)["w"].tolist() == [1.0] * 1000
    assert sorted(p.name for p in small_disk.iterdir()) == ["checkpoint.pt", "filler"]
