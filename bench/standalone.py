"""Run a benchmark module where only torch, numpy and Pillow are installed (a lent GPU machine).

    python3 bench/standalone.py bench.pretrain_throughput --compile

The model benchmarks need no Django, but they draw their images from ``annotator.demo.scenes``,
and importing any ``annotator`` module runs ``annotator/__init__.py``, which loads the Celery
app. Here ``annotator`` is registered as a bare package first, so only the modules a benchmark
really imports are loaded; anything that does need Django or Celery still fails loudly.
"""

from __future__ import annotations

import runpy
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.path.insert(0, str(ROOT))
    package = types.ModuleType("annotator")
    package.__path__ = [str(ROOT / "annotator")]
    sys.modules["annotator"] = package
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
