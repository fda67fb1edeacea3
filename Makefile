# The two commands: `make run` (install everything, serve) and `make test` (install everything,
# lint, type-check, run every test). Both are idempotent on a fresh machine.
.PHONY: install web run demo test lint typecheck webcheck pytest bench screenshot wheel

# The web app (web/) is built into the package by Vite, only when its sources changed.
WEB_STAMP := web/node_modules/.installed
WEB_DIST := src/openinspect/web/dist/index.html
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html \
	$(wildcard web/*.config.* web/tsconfig*.json) web/package.json web/package-lock.json
NPM := npm --prefix web --no-audit --no-fund --loglevel=error

install:
	@./scripts/bootstrap.sh

$(WEB_STAMP): web/package-lock.json | install
	$(NPM) ci
	@touch $@

$(WEB_DIST): $(WEB_STAMP) $(WEB_SOURCES)
	$(NPM) run build
	@touch $@

web: install $(WEB_DIST)

run: install web
	uv run openinspect serve

demo: install
	uv run openinspect demo

lint: install
	uv run ruff check src tests bench
	uv run ruff format --check src tests bench

typecheck: install
	uv run mypy

webcheck: install $(WEB_STAMP)
	$(NPM) run typecheck
	$(NPM) test

# Tests wait far more than they compute (sandboxes, servers, sockets), so four workers fit two
# cores; a file's tests stay on one worker (its module fixtures are shared).
PYTEST_WORKERS ?= 4

pytest: install web
	uv run pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck webcheck pytest

bench: install web
	uv run python -m bench

# docs/img/session-view.png, the README's screenshot, taken by the browser tests.
screenshot: install web
	OPENINSPECT_SCREENSHOT=docs/img/session-view.png uv run pytest -q \
		tests/web/test_screenshot.py

# A wheel with the built web app inside: installing it needs no Node.
wheel: install web
	uv build --wheel
