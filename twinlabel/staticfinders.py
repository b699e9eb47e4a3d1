"""Static files that ship inside installed Python packages, served from our own origin (no CDN):
the app works offline. ``collectstatic`` copies them like any other static file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

# URL path under STATIC_URL -> (package, file inside it)
PACKAGE_FILES = {"vendor/plotly.min.js": ("plotly", "package_data/plotly.min.js")}


def _package_file(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


class PackageFileFinder(BaseFinder):
    def check(self, **kwargs):
        from django.core.checks import Error

        return [
            Error(
                f"{package} is not installed, or lacks {relative}: the static file {name} cannot be served.",
                hint="pip install -r requirements.txt",
                id="annotator.E001",
            )
            for name, (package, relative) in PACKAGE_FILES.items()
            if _package_file(package, relative) is None
        ]

    def find(self, path, find_all=False, **kwargs):
        found = PACKAGE_FILES.get(path) and _package_file(*PACKAGE_FILES[path])
        if not found:
            return [] if find_all else None
        return [str(found)] if find_all else str(found)

    def list(self, ignore_patterns):
        for name, (package, relative) in PACKAGE_FILES.items():
            found = _package_file(package, relative)
            if found is not None:
                prefix = name[: -len(found.name)].rstrip("/")
                storage = FileSystemStorage(location=str(found.parent))
                storage.prefix = prefix  # collectstatic stores the file under this folder
                yield found.name, storage
