# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Both need only python3 and make: scripts/uv installs uv when it is missing, and `uv run` syncs
# the locked environment before running anything.
UV := ./scripts/uv
RUN := $(UV) run --frozen

.PHONY: demo test lint typecheck unit bench fmt

demo:
	$(RUN) swarmbalancer demo

test: lint typecheck unit

lint:
	$(RUN) ruff check src tests benchmarks
	$(RUN) ruff format --check src tests benchmarks

typecheck:
	$(RUN) mypy

unit:
	$(RUN) pytest

fmt:
	$(RUN) ruff format src tests benchmarks
	$(RUN) ruff check --fix src tests benchmarks

bench:
	$(UV) run --frozen --group bench python benchmarks/overhead.py --peers
	$(UV) run --frozen --group bench python benchmarks/balance.py
