"""bin/up prints the demo login only when that user exists in the database it serves."""

from __future__ import annotations

import importlib.machinery
import importlib.util

import pytest

from tests import procs
from tests.factories import make_user


def _bin_up():
    loader = importlib.machinery.SourceFileLoader("bin_up", str(procs.ROOT / "bin" / "up"))
    spec = importlib.util.spec_from_loader("bin_up", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.mark.integration
def test_it_prints_the_demo_login_only_when_the_admin_exists(transactional_db, tmp_path, monkeypatch):
    for name, value in procs.service_env(TWINLABEL_VAR_DIR=str(tmp_path)).items():
        monkeypatch.setenv(name, value)
    (tmp_path / "demo_password").write_text("left-from-another-database\n")
    up = _bin_up()
    assert up.login_line().startswith("No demo login yet")
    make_user("admin")
    assert up.login_line() == "Log in as: admin / left-from-another-database"
