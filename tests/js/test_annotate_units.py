"""Runs the annotate page's pure JavaScript tests (tests/js/*.test.mjs) with Node, when it is there."""

import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).parent


def test_it_passes_the_node_tests(need):
    node = shutil.which("node")
    need(node is not None, "node (for the JavaScript unit tests)")
    result = subprocess.run(
        [node, "--test", *sorted(str(p) for p in HERE.glob("*.test.mjs"))], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
