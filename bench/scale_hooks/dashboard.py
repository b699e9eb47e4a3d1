"""bench/scale.py hook: the dashboard JSON at the benchmark's size (issue 20; target < 500 ms at
1M images / 3M boxes on PostgreSQL), through Django's full stack, median of ``repeat`` after one
warm-up, with its query count. Below DASHBOARD_LIVE_MAX_IMAGES the request computes every figure;
from there on it reads the figures the worker's sweep stored (twinlabel/web/dashboard.py), so the
hook also times that scan (``figures_refresh``: what the worker pays, once per change) and each
of its figures, and the request with every figure computed live, as it was before."""

from __future__ import annotations

import time


def measure(*, project, user, repeat: int) -> dict[str, float]:
    from django.db import connection
    from django.test import Client, override_settings

    from labeling.models import ProjectModelState
    from bench._util import median_get_ms
    from twinlabel.web import dashboard

    client = Client()
    client.force_login(user)
    url = f"/api/projects/{project.id}/dashboard/"

    def median_ms(times: int) -> float:  # after one warm-up, which computes stored figures when none are
        return median_get_ms(client, url, times)

    start = time.perf_counter()
    row = dashboard.figures_refresh(project_id=project.id)  # the sweep's scan
    refresh_ms = round((time.perf_counter() - start) * 1000, 1)
    stored_ms = median_ms(repeat)
    queries = []  # counted by an execute wrapper (the debug query log can be full after the scan)

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url)
    as_of = client.get(url).json()["figures_as_of"]
    state = ProjectModelState.objects.filter(project_id=project.id).first()
    probe = state.probe_run_id if state else None
    parts = {}
    for name, fn in {
        "with_suggestions": lambda: dashboard.images_with_suggestions(probe_run_id=probe),
        "suggested_by_label": lambda: dashboard.suggested_by_label(probe_run_id=probe),
        "submissions_by_day": lambda: dashboard.submissions_by_day(project_id=project.id),
        "attribute_counts": lambda: dashboard.attribute_counts(project_id=project.id),
        "tag_counts": lambda: dashboard.tag_counts(project_id=project.id),
        "median_seconds": lambda: dashboard.median_seconds_per_image(project_id=project.id),
    }.items():
        begin = time.perf_counter()
        fn()
        parts[name] = round((time.perf_counter() - begin) * 1000, 1)
    with override_settings(DASHBOARD_LIVE_MAX_IMAGES=10**12):  # every figure computed by the request
        live_ms = median_ms(max(1, min(repeat, 3)))
    return {
        "dashboard_json_ms": stored_ms,
        "dashboard_json_queries": len(queries),
        "dashboard_reads_stored_figures": as_of is not None,
        "dashboard_figures_refresh_ms": refresh_ms,
        "dashboard_figures_compute_ms": row.compute_ms,
        "dashboard_json_live_ms": live_ms,
        "dashboard_scan_ms": parts,
    }
