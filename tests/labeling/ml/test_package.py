import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_importing_it_imports_neither_django_nor_torch_until_needed():
    code = (
        "import sys, labeling.ml as ml; assert 'torch' not in sys.modules; "
        "import labeling.ml.presets, labeling.ml.calibrate, labeling.ml.confidence, labeling.ml.active, "
        "labeling.ml.metrics, labeling.ml.cache; assert 'torch' not in sys.modules, 'torch imported'; "
        "import labeling.ml.cache, labeling.ml.augment, labeling.ml.backbone, labeling.ml.barlow, "
        "labeling.ml.lars, labeling.ml.train, labeling.ml.embed, labeling.ml.probe, labeling.ml.metrics, "
        "labeling.ml.active, labeling.ml.projection, labeling.ml.tracking; labeling.ml.probe.fit_probe; "
        "assert 'django' not in sys.modules, 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_names_are_imported_from_their_submodule():
    import labeling.ml

    assert not hasattr(labeling.ml, "__getattr__")  # no lazy re-exports: a reader follows the import
