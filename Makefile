# The two commands that matter: `make demo` and `make test`. Both bootstrap .venv themselves.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The locks are complete (pip freeze of a scratch venv), so the venv installs them with --no-deps.
# Left out of them: rfc3987-syntax, which jsonschema imports when present and which builds a
# grammar at import (~2.5 s in every process that imports jsonschema: Airflow, GE); only Neptune's
# API client (bravado, jsonschema[format-nongpl]) asks for it, for an IRI format the offline mirror
# never checks.
LOCK_LEFT_OUT := rfc3987-syntax
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1

.PHONY: venv demo ui-check test test-fast lint db-start db-stop lock lock-reader reader-slim clean airflow airflow-down soak bench

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "newsrec needs Python 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing requirements into $(VENV) (first run takes a few minutes)..."
	@$(BIN)/pip install -q --disable-pip-version-check --no-deps -r requirements-dev.txt 2>&1 \
		| { grep -v '^WARNING: Location' || true; }
	@$(BIN)/pip install -q --disable-pip-version-check --no-deps -e . 2>&1 \
		| { grep -v '^WARNING: Location' || true; }
	@touch $@

demo: venv
	$(BIN)/newsrec demo

# The UIs in a real browser: a real scheduler run of newsrec_nightly in its own home .newsrec-ui/,
# then the grid, graph, plugin pages, a task's extra link, GE, Evidently and the nightly report in
# Debian's headless chromium (Playwright); screenshots into docs/img/. Not part of `make test`.
ui-check: venv
	$(BIN)/newsrec ui-check $(UI_CHECK_ARGS)

# Test files are spread over TEST_WORKERS processes (each with its own PostgreSQL); a file stays on one.
TEST_WORKERS ?= 2
test: venv
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# The developer loop (a few minutes): the unit tests and the quick integration files; the rest is
# marked slow (tests/conftest.py, FAST_FILES). `make test` runs both tiers.
test-fast: venv
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

# Airflow 3 (UI on http://localhost:8080) on the project's PostgreSQL, DAGs and plugins loaded.
airflow: venv
	$(BIN)/newsrec airflow up

airflow-down: venv
	$(BIN)/newsrec airflow down

# The whole nightly cycle at seed scale (521k users, 144k articles a day, 7 days) in its own
# home .newsrec-bench/, then the references; results in bench/results/nightly.{json,md,png}.
# Smaller: make bench BENCH_ARGS="--users 20000 --articles-per-day 5000".
bench: venv
	$(BIN)/newsrec bench nightly $(BENCH_ARGS)

# The reader under load (60 s, 32 connections) while batches go live, in its own database
# <main>_soak; fails unless every response is a complete list from one batch. bench/results/soak.{json,md}.
soak: venv
	$(BIN)/newsrec bench soak --seconds 60 --connections 32

# What CI checks before the tests: ruff's rules, ruff's format and the import rules (pyproject.toml).
lint: venv
	$(BIN)/ruff check pipelines dags plugins tests
	$(BIN)/ruff format --check pipelines dags plugins tests
	$(BIN)/lint-imports

db-start: venv
	$(BIN)/newsrec db start

db-stop: venv
	$(BIN)/newsrec db stop

# Re-resolve requirements.txt (run time) and requirements-dev.txt (tools on top) in scratch venvs.
lock:
	rm -rf /tmp/newsrec-lock && $(PYTHON) -m venv /tmp/newsrec-lock
	/tmp/newsrec-lock/bin/pip install -q -r requirements.in
	/tmp/newsrec-lock/bin/pip uninstall -q -y $(LOCK_LEFT_OUT)
	{ echo "# Run-time environment, pinned, resolved from requirements.in (see 'make lock'). Dev tools: requirements-dev.txt."; \
	  echo "# Python 3.11. Install: pip install --no-deps -r requirements.txt"; \
	  /tmp/newsrec-lock/bin/pip freeze --exclude-editable | sort -f; } > requirements.txt
	/tmp/newsrec-lock/bin/pip freeze --exclude-editable | sort -f > /tmp/newsrec-lock/runtime.txt
	/tmp/newsrec-lock/bin/pip install -q -c requirements.txt -r requirements-dev.in
	{ echo "# Tests, lint and profiling on top of the run time (pinned; from requirements-dev.in, see 'make lock')."; \
	  echo "-r requirements.txt"; \
	  /tmp/newsrec-lock/bin/pip freeze --exclude-editable | sort -f | comm -23 - /tmp/newsrec-lock/runtime.txt; } > requirements-dev.txt

# The REST reader's slim environment (requirements-reader.txt, what docker/reader.Dockerfile
# installs) in a fresh venv, with the reader's tests run in it; prints its size next to .venv's.
reader-slim:
	PYTHON=$(PYTHON) FULL_VENV=$(CURDIR)/$(VENV) tests/reader_slim/check.sh

# Re-resolve requirements-reader.txt at requirements.txt's versions (run after `make lock`).
lock-reader:
	tests/reader_slim/lock.sh $(PYTHON)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
