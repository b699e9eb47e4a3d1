"""Measurements bench/scale.py runs when their feature is on the branch.

Add ``dashboard.py`` (issue 6) or ``coco.py`` (issue 7) here with

    def measure(*, project, user, repeat: int) -> dict[str, float]:
        ...  # e.g. {"dashboard_ms": median, "coco_export_rows_per_s": rate, "coco_export_first_byte_ms": ...}

``project`` is a project of the benchmark's size (10k ... 1M images, three boxes each, six labels);
``user`` is its admin. bench/scale.py merges the figures into its result at every size and reports
the 1M/10k ratio (target: within 2x for requests; a steady rate for an export).
"""
