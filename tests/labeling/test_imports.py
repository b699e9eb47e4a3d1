"""The labeling app's import graph: no cycles (counting imports inside functions too, which is how
cycles hide), labeling.ml free of Django and the apps, and the web side free of torch."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "labeling"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {
        ".".join(p.relative_to(REPO).with_suffix("").parts): p for p in APP.rglob("*.py") if "migrations" not in p.parts
    }
    modules = {name.removesuffix(".__init__"): p for name, p in modules.items()}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _on_a_cycle(graph: dict[str, set[str]], start: str) -> bool:
    stack, seen = list(graph[start]), set()
    while stack:
        name = stack.pop()
        if name == start:
            return True
        if name not in seen:
            seen.add(name)
            stack.extend(graph[name])
    return False


def test_no_module_of_the_app_imports_itself_back():
    graph = _graph()
    cycles = sorted(name for name in graph if _on_a_cycle(graph, name))
    assert not cycles, f"import cycles through {cycles}"


def test_the_ml_package_imports_neither_django_nor_the_apps():
    for path in (APP / "ml").rglob("*.py"):
        bad = {
            m
            for m in _imports(path)
            if m.split(".")[0] in ("django", "annotator", "rest_framework")
            or (m.startswith("labeling.") and not m.startswith("labeling.ml"))
        }
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_web_side_does_not_import_torch():
    code = (
        "import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'twinlabel.settings'); "
        "django.setup(); import twinlabel.urls, twinlabel.web.api.urls, labeling.services, labeling.selectors, "
        "twinlabel.web.dashboard, labeling.tasks, labeling.sweep; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
