"""The embedded SQLite default keeps its planner's statistics: PRAGMA optimize when a connection
closes, ANALYZE after migrate, and the composite index Box(image, label) that the image list's
``?label=`` filter probes (it walked every box of the label at 50,000 images, 1 s; issue 20)."""

import sqlite3

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotator.apps import analyze_sqlite
from twinlabel.backends.sqlite3.base import DatabaseWrapper
from annotator.selectors import image_list
from tests.factories import make_project

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded SQLite default")


def _stat_rows(path, table: str) -> int:
    with sqlite3.connect(path) as raw:
        if not raw.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
            return 0
        return raw.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = ?", [table]).fetchone()[0]


@sqlite_only
def test_it_gathers_statistics_when_a_connection_closes(tmp_path, django_db_blocker):
    path = tmp_path / "db.sqlite3"
    wrapper = DatabaseWrapper({**connection.settings_dict, "NAME": str(path)}, alias="optimize-test")
    with django_db_blocker.unblock(), wrapper.cursor() as cursor:  # a private database, not the test one
        cursor.execute("CREATE TABLE t (a INTEGER, b INTEGER)")
        cursor.execute("CREATE INDEX t_a ON t (a)")
        cursor.execute("CREATE INDEX t_b ON t (b)")
        cursor.executemany("INSERT INTO t VALUES (%s, %s)", [(i % 50, i % 7) for i in range(2000)])
        cursor.execute("SELECT count(*) FROM t WHERE a = 3 AND b = 2")  # the planner used t's indexes
    assert _stat_rows(path, "t") == 0
    with django_db_blocker.unblock():
        wrapper.close()
    assert _stat_rows(path, "t") == 2  # one row per index of t


@sqlite_only
@pytest.mark.django_db
def test_migrate_leaves_statistics_for_the_planner():
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS sqlite_stat1")  # allowed: ANALYZE recreates it
    analyze_sqlite(using="default")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        assert cursor.fetchone()[0] == 1


@sqlite_only
@pytest.mark.django_db
def test_the_label_filter_probes_the_box_image_label_index():
    project = make_project()
    cat = project.labels.first()
    with CaptureQueriesContext(connection) as queries:
        image_list(project_id=project.id, human_label=cat.id)
    sql = next(q["sql"] for q in queries if "annotator_box" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        plan = " | ".join(row[-1] for row in cursor.fetchall())
    assert "box_image_label" in plan, plan
