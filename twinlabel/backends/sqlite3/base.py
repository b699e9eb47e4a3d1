"""Django's SQLite backend, plus ``PRAGMA optimize`` when a connection closes.

SQLite plans with statistics (``sqlite_stat1``) only when something runs ANALYZE, and nothing did:
at 50,000 images the image list's ``?label=`` filter picked the box table's label index and took
1,056 ms (3 ms after an ANALYZE). SQLite's own advice for short-lived connections is to run
``PRAGMA optimize`` just before closing each one: it analyses only the tables whose indexes this
connection's queries used and whose statistics are missing or stale, so it costs nothing most of
the time. ``analysis_limit`` (set on every connection, settings.py) bounds an ANALYZE to a sample of
each index, so even a first analysis of a million-row table takes milliseconds, not seconds.
Django closes the web's connection after each request (CONN_MAX_AGE 0), Celery's after each task.
"""

from __future__ import annotations

import sqlite3

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def _close(self):
        if self.connection is not None and not self.in_atomic_block:
            try:
                self.connection.execute("PRAGMA optimize")
            except sqlite3.Error:  # busy or read-only: the next connection will do it
                pass
        super()._close()
