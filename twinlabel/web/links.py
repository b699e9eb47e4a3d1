"""Page URLs for scripts, from the URL conf: a page script fills in ids, it never types a path."""

from __future__ import annotations

from django.urls import reverse


def url_template(name: str, *, sentinels: dict[str, str] | None = None, **placeholders: str) -> str:
    """The URL of route ``name`` with ``{placeholder}``s for a page script to fill in, e.g.
    ``url_template("api_run_cancel", run_id="{id}")`` → ``/api/runs/{id}/cancel/``. Reversed with a
    sentinel value per argument (distinct digits, which int converters accept; ``sentinels`` gives one
    for an argument whose pattern takes no digits), then each sentinel is swapped for its placeholder."""
    values = {key: (sentinels or {}).get(key, str(987654320 + i)) for i, key in enumerate(placeholders)}
    url = reverse(name, kwargs=values)
    for key, placeholder in placeholders.items():
        url = url.replace(values[key], placeholder, 1)
    return url
