# Nurture — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_ENV := NURTURE_DEV_MODE=1

.PHONY: run test install lint typecheck playground node-deps screenshots bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Nurture needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Node tools pinned by package-lock.json: the Agents Playground and the Adaptive Cards renderer (browser tests),
# Microsoft's app manifest schemas (nurture package).
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the browser tests and nurture package will say what to install"; fi

node-deps: node_modules/.installed

install: $(VENV)/.installed

## make run: install, migrate, load demo data and serve in dev mode on SQLite (http://localhost:3978/api/messages)
run: install
	$(DEV_ENV) $(BIN)/nurture db upgrade
	$(DEV_ENV) $(BIN)/nurture demo
	$(DEV_ENV) $(BIN)/nurture serve --host 127.0.0.1 --port 3978

## make playground (second terminal, after make run): the Microsoft 365 Agents Playground on http://localhost:56150
playground: node-deps
	node_modules/.bin/agentsplayground -e http://localhost:3978/api/messages -c msteams --disable-telemetry

lint: install
	$(BIN)/ruff check bot cards storage tests bench
	$(BIN)/ruff format --check bot cards storage tests bench

typecheck: install
	$(BIN)/mypy

## make test: lint, type check, then the whole suite on SQLite and PostgreSQL (NURTURE_TEST_POSTGRES_URL)
test: lint typecheck node-deps
	$(BIN)/python -m pytest

## make screenshots: photograph every card kind in the Agents Playground into docs/cards/ (the README gallery)
screenshots: install node-deps
	NURTURE_SCREENSHOTS_DIR=$(CURDIR)/docs/cards $(BIN)/python -m pytest tests/e2e/test_playground.py

## make bench: the benchmarks under bench/ (minutes each; they print ratios and write bench/results/*.json)
# every benchmark runs even when an earlier one failed its checks; the target fails if any did
bench: install
	@failed=0; for name in inbound delivery targeting ingestion; do \
		$(BIN)/python -m bench.$$name || failed=1; \
	done; exit $$failed

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
