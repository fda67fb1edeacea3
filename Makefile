# The two commands: `make run` (install everything, serve) and `make test` (install everything,
# lint, type-check, run every test). Both are idempotent on a fresh machine.
.PHONY: install run demo test lint typecheck pytest bench

install:
	@./scripts/bootstrap.sh

run: install
	uv run openinspect serve

demo: install
	uv run openinspect demo

lint: install
	uv run ruff check src tests bench
	uv run ruff format --check src tests bench

typecheck: install
	uv run mypy

pytest: install
	uv run pytest -q

test: lint typecheck pytest

bench: install
	uv run python -m bench
