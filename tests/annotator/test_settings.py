"""Settings come from the environment through typed helpers that fail loudly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from twinlabel.env import env_bool, env_float, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]


def test_env_bool_reads_the_usual_spellings(monkeypatch):
    for value, expected in [("1", True), ("yes", True), ("On", True), ("0", False), ("false", False)]:
        monkeypatch.setenv("FLAG", value)
        assert env_bool("FLAG", not expected) is expected
    monkeypatch.delenv("FLAG")
    assert env_bool("FLAG", True) is True


def test_env_helpers_refuse_values_they_cannot_use(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG='maybe' is not a boolean"):
        env_bool("FLAG", False)
    monkeypatch.setenv("COUNT", "ten")
    with pytest.raises(ImproperlyConfigured, match="is not an integer"):
        env_int("COUNT", 1)
    monkeypatch.setenv("COUNT", "-3")
    with pytest.raises(ImproperlyConfigured, match="below its minimum"):
        env_int("COUNT", 1, minimum=0)
    monkeypatch.setenv("RATIO", "0.3")
    assert env_float("RATIO", 0.5, minimum=0.0, maximum=1.0) == 0.3
    for bad, message in [("half", "is not a number"), ("1.5", "outside"), ("nan", "outside")]:
        monkeypatch.setenv("RATIO", bad)
        with pytest.raises(ImproperlyConfigured, match=message):
            env_float("RATIO", 0.5, minimum=0.0, maximum=1.0)
    monkeypatch.setenv("HOSTS", " a.example, b.example ,")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


def _settings_in_subprocess(tmp_path, **env):
    clean = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL", "DEBUG", "CELERY_BROKER_URL"}
    }
    clean.update({"TWINLABEL_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "twinlabel.settings", **env})
    code = (
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL, bool(settings.SECRET_KEY))"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_the_embedded_default_needs_no_configuration(tmp_path):
    result = _settings_in_subprocess(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["twinlabel.backends.sqlite3", "filesystem://", "True"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # the generated key is private


def test_a_server_deployment_must_set_a_secret_key(tmp_path):
    result = _settings_in_subprocess(tmp_path, DATABASE_URL="postgres://u@db:5432/twinlabel")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_a_bad_debug_value_stops_the_start(tmp_path):
    result = _settings_in_subprocess(tmp_path, DEBUG="sometimes")
    assert "DEBUG='sometimes' is not a boolean" in result.stderr


def test_redis_and_postgres_urls_are_used_when_set(tmp_path):
    result = _settings_in_subprocess(
        tmp_path,
        DATABASE_URL="postgres://u@db:5432/twinlabel",
        SECRET_KEY="k",
        CELERY_BROKER_URL="redis://redis:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "redis://redis:6379/0", "True"]


def _storage_in_subprocess(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL", "STORAGE_BACKEND"}}
    clean.update({"TWINLABEL_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "twinlabel.settings", **env})
    code = "from django.conf import settings; print(settings.STORAGES['default']['BACKEND'], settings.MEDIA_REDIRECT)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_media_storage_is_the_filesystem_by_default_and_s3_is_checked_at_start(tmp_path):
    result = _storage_in_subprocess(tmp_path)
    assert result.stdout.split() == ["django.core.files.storage.FileSystemStorage", "False"], result.stderr
    assert "use filesystem or s3" in _storage_in_subprocess(tmp_path, STORAGE_BACKEND="ftp").stderr
    s3 = _storage_in_subprocess(tmp_path, STORAGE_BACKEND="s3", AWS_STORAGE_BUCKET_NAME="images")
    try:
        import boto3  # noqa: F401
    except ImportError:
        assert "needs boto3" in s3.stderr
    else:
        assert s3.stdout.split() == ["storages.backends.s3.S3Storage", "True"], s3.stderr
        assert "AWS_STORAGE_BUCKET_NAME" in _storage_in_subprocess(tmp_path, STORAGE_BACKEND="s3").stderr


def _setting_values(tmp_path, names, **env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DATABASE_URL", "DEBUG", "HTTPS", "CELERY_BROKER_URL"}
    }
    clean.update({"TWINLABEL_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "twinlabel.settings", **env})
    code = f"import json; from django.conf import settings; print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


COOKIE_FLAGS = [
    "DEBUG",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SESSION_COOKIE_HTTPONLY",
    "CSRF_COOKIE_HTTPONLY",
    "SECURE_PROXY_SSL_HEADER",
]


def test_debug_is_off_and_cookies_are_plain_http_by_default(tmp_path):
    values = _setting_values(tmp_path, COOKIE_FLAGS)
    assert values == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_https_makes_cookies_secure_and_turns_on_hsts_and_the_redirect(tmp_path):
    values = _setting_values(tmp_path, COOKIE_FLAGS, HTTPS="1", SECRET_KEY="k" * 50)
    assert values == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


def test_a_production_configuration_passes_djangos_deploy_checks(tmp_path):
    # DJANGO_ALLOW_ASYNC_UNSAFE: set by the browser tests' live server in this process, never in a deployment.
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "HTTPS", "CELERY_BROKER_URL", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    clean.update(
        {
            "TWINLABEL_VAR_DIR": str(tmp_path),
            "HTTPS": "1",
            "SECRET_KEY": "q8-" + "x7Zp2&Lk" * 8,
            "ALLOWED_HOSTS": "labels.example.org",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
            "SECURE_HSTS_PRELOAD": "1",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
