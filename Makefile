# Twinlabel: `make run` starts the app; `make test` runs the whole test suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint demo bench clean-var

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

## run: install, migrate, create the demo project, start web + workers, print the URL and login
run: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py demo
	PYTHON=$(PY) $(PY) bin/up

## test: the whole suite (set REQUIRE_SERVICES=1 to fail, not skip, when Postgres/Redis/Chromium are missing)
# (The test accounts' passwords are hashed with MD5, not PBKDF2's 0.3 s each: PASSWORD_HASHERS in twinlabel/settings.py.)
test: $(VENV)/.dev
	SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} \
	PASSWORD_HASHERS=$${PASSWORD_HASHERS:-django.contrib.auth.hashers.MD5PasswordHasher,django.contrib.auth.hashers.PBKDF2PasswordHasher} \
	$(PY) -m pytest $(PYTEST_ARGS)

## lint: the habits CI holds the code to: ruff (lint and format), import-linter's contracts (.importlinter), mypy --strict on the pure modules (mypy.ini)
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

## bench: the benchmarks that need no GPU
bench: $(VENV)/.dev
	$(PY) -m bench.import_throughput

clean-var:
	rm -rf var
