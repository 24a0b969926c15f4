# Every dependency the demo and the tests need is installed here, from the registries, into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
UI_PORT ?= 3000

.PHONY: install browser postgres demo test ui bench lint clean-data reliability-doc docs

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres,bench]'
	touch $@

install: $(BIN)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/alpha-assets demo

# Debian's Chromium for the UI test (test_e2e/test_ui_page.py); installed once, needs root (as in CI).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL server for the tests on a Postgres instance: they start throwaway clusters of their own
# (alpha_assets_tests/postgres_server.py), so the package's own cluster is not needed. Installed once, needs root.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq postgresql >/dev/null; }

test: install browser postgres lint
	$(BIN)/python -m pytest

# docs/manifest.md and docs/manifest.schema.json from the parameter dataclasses (a test fails when they are stale).
docs: install
	$(BIN)/python -c "from alpha_assets.definitions import write_manifest_reference; write_manifest_reference()"

# The committed docs/reliability.md, regenerated on purpose (a plain test run writes test-artifacts/reliability.md).
reliability-doc: install
	ALPHA_ASSETS_RELIABILITY_TABLE=docs/reliability.md $(BIN)/python -m pytest alpha_assets_tests/test_reliability

ui: install $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

BENCH_SIZE ?= large
bench: install
	cd bench && for script in bench_ingest bench_dataops_core bench_features bench_alpha bench_optimize; do \
		../$(BIN)/python $$script.py --size $(BENCH_SIZE) || exit 1; done

LINTED := alpha_assets alpha_assets_tests bench
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

clean-data:
	rm -rf data/lakehouse data/export data/artifacts data/lakehouse.duckdb
