"""Writes, one module per noun (projects, labels, members, images, annotations, queue, reviews,
status_counts, exchange, backup, deletion, media_gc), and the shared helpers in ``locking``.
Callers import each service from its module; nothing is re-exported here."""
