"""Every file model assistance keeps on disk, under settings.MODEL_DIR. No other module builds
one of these paths.

    runs/<run>/checkpoint.pt                 a pretraining's last whole-epoch checkpoint
    runs/<run>/embeddings/block-<k>.npz      its features, one file per block of image ids
    runs/<run>/embeddings/ann.faiss (+.json) their nearest-neighbour index, on large projects (labeling.ml.ann)
    runs/<run>/projection.npz                its embedding map (2-D points for the dashboard)
    runs/<run>/probe.npz                     a probe run's fitted probe (labeling.ml.probe)
    runs/<run>/finetune-paused.pt            a probe run's fine-tuning, paused: its folds so far and the network under way
    runs/<run>/detector.pt                   a detector run's checkpoint, then its model (labeling.ml.detector)
    runs/<run>/tensorboard/, profile/...     the files a run leaves for people (RUN_FILES)
    cache/project-<id>/r<px>/                the project's decoded image stores (the pretraining's squares)
    cache/project-<id>/letterbox<px>/        the detector's letterboxed submitted images, per input size
    worker-device.json                       the device the worker's pretraining runs on
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

# The files a run leaves for people, under its directory (served by the run-files view).
RUN_FILES = {"tensorboard": "tensorboard", "trace": "profile/trace.json"}


def run_dir(run_id: int) -> Path:
    return Path(settings.MODEL_DIR) / "runs" / str(run_id)


def run_file(run_id: int, kind: str) -> Path:
    """One of RUN_FILES ("tensorboard" or "trace") of a run."""
    return run_dir(run_id) / RUN_FILES[kind]


def checkpoint_path(run_id: int) -> Path:
    return run_dir(run_id) / "checkpoint.pt"


def probe_path(run_id: int) -> Path:
    return run_dir(run_id) / "probe.npz"


def finetuned_path(run_id: int) -> Path:
    """A probe run's fine-tuned network (labeling.ml.finetune), when it kept one."""
    return run_dir(run_id) / "finetuned.pt"


def finetune_paused_path(run_id: int) -> Path:
    """What a probe run's fine-tuning left when it paused (labeling.suggesting._paused_fit)."""
    return run_dir(run_id) / "finetune-paused.pt"


def detector_path(run_id: int) -> Path:
    return run_dir(run_id) / "detector.pt"


def embeddings_dir(backbone_run_id: int) -> Path:
    return run_dir(backbone_run_id) / "embeddings"


def block_path(backbone_run_id: int, block: int) -> Path:
    return embeddings_dir(backbone_run_id) / f"block-{block:07d}.npz"


def ann_path(backbone_run_id: int) -> Path:
    """The approximate nearest-neighbour index beside the embedding blocks (labeling.ml.ann)."""
    return embeddings_dir(backbone_run_id) / "ann.faiss"


def projection_path(embeddings_path: str | Path) -> Path:
    """The embedding map beside an EmbeddingSet's folder (its ``path``)."""
    return Path(embeddings_path).with_name("projection.npz")


def project_cache_dir(project_id: int) -> Path:
    """The project's image stores, one sub-folder per resolution (labeling.ml.cache.store_dir)."""
    base = Path(settings.MODEL_DIR) / "cache" / f"project-{project_id}"
    for legacy in ("pixels.u8", "ids.npy"):  # the old single store, of an unknown resolution: never read
        (base / legacy).unlink(missing_ok=True)
    return base


# Written by a worker when it starts (labeling.config.note_worker_device): the device its pretraining runs on.
WORKER_DEVICE_FILE = "worker-device.json"


def worker_device_path() -> Path:
    return Path(settings.MODEL_DIR) / WORKER_DEVICE_FILE
