# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Both need only python3 and make: scripts/uv installs uv when it is missing, and `uv run` syncs
# the locked environment before running anything.
UV := ./scripts/uv
RUN := $(UV) run --frozen

.PHONY: demo test services native lint typecheck unit pure bench fmt fuzz

demo: native
	$(RUN) swarmbalancer demo

test: services native lint typecheck unit pure

# The hot path compiled with mypyc, next to its sources (a no-op while up to date; pure Python
# where no C compiler is): see scripts/native.py.
native:
	$(RUN) python scripts/native.py

# Debian's redis-server and chromium, installed when missing (the tests start their own).
services:
	./scripts/ensure-services

lint:
	$(RUN) ruff check src tests benchmarks scripts
	$(RUN) ruff format --check src tests benchmarks scripts

typecheck:
	$(RUN) mypy

unit:
	$(RUN) pytest

# The core's suites again on the Python sources: the fallback where no C compiler is.
pure:
	$(RUN) pytest --pure tests/test_coordinator.py tests/test_native.py \
		tests/policies tests/store/test_memory.py tests/runtime tests/sim tests/metrics

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

bench: native
	$(UV) run --frozen --group bench python benchmarks/overhead.py --peers
	$(UV) run --frozen python benchmarks/balance_api.py
	$(UV) run --frozen --group bench python benchmarks/balance.py
	$(UV) run --frozen python benchmarks/durable.py
	$(UV) run --frozen --group distbench python benchmarks/distbench.py
