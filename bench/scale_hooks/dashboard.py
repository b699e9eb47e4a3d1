"""bench/scale.py hook: the dashboard JSON at the benchmark's size (issue 20; target < 500 ms at
1M images / 3M boxes on PostgreSQL), through Django's full stack, median of ``repeat`` after one
warm-up, with its query count."""

from __future__ import annotations

import statistics
import time


def measure(*, project, user, repeat: int) -> dict[str, float]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    url = f"/api/projects/{project.id}/dashboard/"
    assert client.get(url).status_code == 200
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return {"dashboard_json_ms": round(statistics.median(times), 2), "dashboard_json_queries": len(queries)}
