"""bench/scale.py hook: the COCO export of the whole project at the benchmark's size (issue 20;
target >= 20,000 images/s with flat memory at 1M images / 3M boxes on PostgreSQL). The export is
streamed (annotator.exports.export_stream) and its bytes counted, not kept; the first chunk's
time and this process's resident memory every 50,000 images are recorded (flat: the last sample
close to the first)."""

from __future__ import annotations

import os
import time


def measure(*, project, user, repeat: int) -> dict[str, float]:
    from annotator.exports import ExportOptions, export_stream

    images = project.images.count()
    start = time.perf_counter()
    first_byte = None
    size = 0
    rss = [_rss_mb()]
    next_sample, seen = 50_000, 0
    for chunk in export_stream(project=project, options=ExportOptions(format="coco")):
        if first_byte is None:
            first_byte = time.perf_counter() - start
        size += len(chunk)
        seen += chunk.count(b'"file_name"')  # one per image record
        if seen >= next_sample:
            rss.append(_rss_mb())
            next_sample += 50_000
    seconds = time.perf_counter() - start
    rss.append(_rss_mb())
    return {
        "coco_export_images_per_s": round(images / seconds, 1),
        "coco_export_s": round(seconds, 2),
        "coco_export_first_chunk_ms": round((first_byte or 0) * 1000, 1),
        "coco_export_mb": round(size / 1e6, 1),
        "coco_export_rss_mb_first": rss[0],
        "coco_export_rss_mb_max": max(rss),
        "coco_export_rss_mb_last": rss[-1],
    }


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)
