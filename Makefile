# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Both need only python3 and make: scripts/uv installs uv when it is missing, and `uv run` syncs
# the locked environment before running anything.
UV := ./scripts/uv
RUN := $(UV) run --frozen

.PHONY: demo test services lint typecheck unit bench fmt fuzz

demo:
	$(RUN) swarmbalancer demo

test: services lint typecheck unit

# Debian's redis-server and chromium, installed when missing (the tests start their own).
services:
	./scripts/ensure-services

lint:
	$(RUN) ruff check src tests benchmarks
	$(RUN) ruff format --check src tests benchmarks

typecheck:
	$(RUN) mypy

unit:
	$(RUN) pytest

# The fuzz suite of tests/fuzz and the service's OpenAPI fuzz with many more examples and a
# random seed (CI runs them small, with a fixed seed, inside `make test`). FUZZ_EXAMPLES sets
# examples per test (per operation for the OpenAPI fuzz).
FUZZ_EXAMPLES ?= 5000
fuzz:
	SWARMBALANCER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(RUN) pytest tests/fuzz tests/service/test_openapi_fuzz.py \
		-p no:cacheprovider --hypothesis-show-statistics

fmt:
	$(RUN) ruff format src tests benchmarks
	$(RUN) ruff check --fix src tests benchmarks

bench:
	$(UV) run --frozen --group bench python benchmarks/overhead.py --peers
	$(UV) run --frozen python benchmarks/balance_api.py
	$(UV) run --frozen --group bench python benchmarks/balance.py
	$(UV) run --frozen python benchmarks/durable.py
	$(UV) run --frozen --group distbench python benchmarks/distbench.py
