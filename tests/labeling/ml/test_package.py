import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_importing_it_imports_neither_django_nor_torch_until_needed():
    code = ("import sys, labeling.ml as ml; assert 'torch' not in sys.modules; "
            "import labeling.ml.cache, labeling.ml.augment, labeling.ml.backbone, labeling.ml.barlow, "
            "labeling.ml.lars, labeling.ml.train, labeling.ml.embed, labeling.ml.probe, labeling.ml.metrics, "
            "labeling.ml.active, labeling.ml.projection, labeling.ml.tracking; ml.fit_probe; assert 'django' not in sys.modules, 'django imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
