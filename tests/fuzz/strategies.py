"""Hypothesis strategies for the input surfaces: workload documents (near-valid structures with
hostile values, and raw text), configuration objects, and their serialisations.

`EXAMPLES` scales every fuzz test: small in CI (the suite runs in about a minute), large for
`make fuzz` (`SWARMBALANCER_FUZZ_EXAMPLES`, with a random seed instead of a fixed one).
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from swarmbalancer.config import BalancerConfig

#: Examples per fuzz test: `make fuzz` raises it; CI keeps the default and a fixed seed.
EXAMPLES = int(os.environ.get("SWARMBALANCER_FUZZ_EXAMPLES", "0")) or None
LONG_RUN = EXAMPLES is not None
#: Time limit of one fuzz test (all its examples): a hang fails the test instead of stalling CI.
TIME_LIMIT = 3 * 3600 if LONG_RUN else 60


def fuzz_settings(ci_examples: int) -> settings:
    """Settings of one fuzz test: `ci_examples` derandomised in CI, `EXAMPLES` random on demand."""
    return settings(
        max_examples=EXAMPLES or ci_examples,
        deadline=None,
        derandomize=not LONG_RUN,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


HOSTILE_NUMBERS = st.sampled_from(
    [
        *(0, 1, -1, 2, 2**63, 2**64, -(2**63) - 1, 10**20, 10**60, 10**9, 10**7 + 1, 100_001),
        *(0.0, -0.0, 1e-300, 5e-324, 1e-9, 1e300, 1e200, 1.7e308, 0.5, 1.5, 1e9 + 1),
        *(float("inf"), float("-inf"), float("nan")),
    ]
)
NUMBERS = st.one_of(
    HOSTILE_NUMBERS,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=0, max_value=20),
    st.floats(min_value=0.0, max_value=10.0),
)
TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "a", "worker", "eu", "500ms", "5s", "1e999s", "fifo", "wfq", "adaptive"]),
)
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), TEXT)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes a hostile one."""
    return st.one_of(valid, valid, valid, JUNK)


def small_float(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


def _optional(**fields: st.SearchStrategy[Any]) -> dict[str, st.SearchStrategy[Any]]:
    return {key: maybe(value) for key, value in fields.items()}


def agents(tame: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    times = small_float(0, 50) if tame else st.one_of(small_float(0, 1e9), NUMBERS)
    group = st.fixed_dictionaries(
        {"id": maybe(st.sampled_from(["a", "b", "worker", "w-1"]))},
        optional=_optional(
            count=st.integers(1, 4) if tame else st.one_of(st.integers(1, 4), NUMBERS),
            capacity=st.integers(1, 3) if tame else st.one_of(st.integers(1, 3), NUMBERS),
            speed=small_float(0.1, 10) if tame else st.one_of(small_float(1e-6, 1e6), NUMBERS),
            weight=small_float(0.1, 10),
            region=st.sampled_from(["eu", "us"]),
            cost=small_float(0, 10),
            tags=st.lists(TEXT, max_size=2),
            join=times,
            leave=times,
        ),
    )
    return st.lists(group, min_size=1, max_size=4)


def work(tame: bool) -> st.SearchStrategy[dict[str, Any]]:
    size = small_float(0.001, 1) if tame else st.one_of(small_float(1e-9, 1e9), NUMBERS)
    spread = small_float(0, 2) if tame else st.one_of(small_float(0, 10), NUMBERS)
    return st.one_of(
        st.fixed_dictionaries({"dist": st.just("constant"), "value": maybe(size)}),
        st.fixed_dictionaries({"dist": st.just("exponential"), "mean": maybe(size)}),
        st.fixed_dictionaries(
            {"dist": st.just("pareto"), "alpha": maybe(small_float(1.01, 1e6)), "mean": size},
            optional={"max": maybe(size)},
        ),
        st.fixed_dictionaries(
            {"dist": st.just("lognormal"), "mean": maybe(size), "sigma": maybe(spread)}
        ),
        st.fixed_dictionaries(
            {"dist": st.just("bimodal"), "short": size, "long": size, "p_long": small_float(0, 1)}
        ),
        JUNK,
    )


def arrival(tame: bool) -> st.SearchStrategy[dict[str, Any]]:
    rate = small_float(1, 1000) if tame else st.one_of(small_float(1e-9, 1e9), NUMBERS)
    span = small_float(0.01, 5) if tame else st.one_of(small_float(1e-3, 1e9), NUMBERS)
    return st.one_of(
        st.fixed_dictionaries({"process": st.just("batch")}, optional={"at": maybe(span)}),
        st.fixed_dictionaries({"process": st.just("poisson"), "rate": maybe(rate)}),
        st.fixed_dictionaries(
            {"process": st.just("bursty"), "on_rate": rate, "on": span, "off": span},
            optional={"off_rate": maybe(rate)},
        ),
        st.fixed_dictionaries(
            {
                "process": st.just("diurnal"),
                "rate": rate,
                "amplitude": small_float(0, 1),
                "period": maybe(span),
            }
        ),
        JUNK,
    )


CONFIG_KEYS = sorted(
    {field.alias or name for name, field in BalancerConfig.model_fields.items()}
    | set(BalancerConfig.model_fields)
)
TAME_CONFIG = st.fixed_dictionaries(
    {},
    optional={
        "strategy": st.sampled_from(["round_robin", "weighted", "least_connections", "adaptive"]),
        "discipline": st.sampled_from(["fifo", "cfs", "wfq"]),
        "stealThreshold": st.integers(0, 10),
        "maxQueueSize": st.integers(1, 20),
        "maxRetries": st.integers(0, 3),
        "checkInterval": small_float(0.5, 10),
    },
)


def configs(tame: bool = False) -> st.SearchStrategy[Any]:
    """Configuration objects: known keys in either spelling with hostile values, unknown keys."""
    if tame:
        return TAME_CONFIG
    keys = st.one_of(st.sampled_from(CONFIG_KEYS), TEXT)
    return st.one_of(
        st.dictionaries(keys, JUNK, max_size=4),
        st.dictionaries(st.one_of(keys, st.integers(), st.none()), JUNK, max_size=3),
        TAME_CONFIG,
        JUNK,
    )


def workloads(tame: bool = False) -> st.SearchStrategy[Any]:
    """Workload documents: near-valid structure, values from valid to hostile; `tame` keeps
    counts and times small enough to simulate every valid one in milliseconds."""
    count = st.integers(1, 30) if tame else st.one_of(st.integers(1, 50), NUMBERS)
    tasks = st.fixed_dictionaries(
        {"count": maybe(count), "work": work(tame)},
        optional={
            "arrival": arrival(tame),
            "priority": maybe(st.just({"high": 0.5, "normal": 0.5})),
            "tenant": maybe(st.one_of(st.just({"t1": 1.0}), st.builds(dict, zipf=NUMBERS))),
            "deadline": maybe(st.builds(dict, slack=small_float(1, 100))),
            "affinity": maybe(st.just({"eu": 0.3})),
            "estimate": maybe(st.builds(dict, error=small_float(0, 2))),
        },
    )
    fault = st.fixed_dictionaries(
        {"agent": maybe(st.just("a")), "from": maybe(small_float(0, 10))},
        optional=_optional(
            until=small_float(0, 20),
            error_rate=small_float(0, 1),
            slowdown=small_float(1, 5),
            down=st.booleans(),
        ),
    )
    document = st.fixed_dictionaries(
        {"agents": maybe(agents(tame)), "tasks": maybe(tasks)},
        optional={
            "seed": maybe(st.integers(0, 2**32)),
            "name": TEXT,
            "tenants": maybe(st.just([{"id": "t1", "weight": 2.0}])),
            "faults": maybe(st.lists(fault, max_size=2)),
            "config": maybe(configs(tame)),
        },
    )
    return document if tame else st.one_of(document, document, document, JUNK)


def serialise(data: Any, as_json: bool) -> str:
    """YAML or JSON text of `data` (NaN and Infinity stay in, to be refused)."""
    if as_json:
        return json.dumps(data)
    return str(yaml.safe_dump(data, allow_unicode=True))


STRUCTURAL = st.text(alphabet="[]{}:,-&*!\"'\n #a1.e|>?", max_size=80)


@st.composite
def raw_texts(draw: st.DrawFn) -> str:
    """Raw document text: structural noise, deep nesting, long integers, odd characters."""
    depth = draw(st.integers(0, 300))
    return str(
        draw(
            st.one_of(
                STRUCTURAL,
                st.text(max_size=60),
                st.just("[" * depth + "]" * depth),
                st.just('{"a": ' * depth + "1" + "}" * depth),
                st.just("a: " + "- " * depth + "x"),
                st.builds(lambda n: "tasks: {count: " + "9" * n + "}", st.integers(1, 6000)),
                st.builds(lambda k: f'{{"{k}": 1, "{k}": 2}}', st.text(max_size=5)),
            )
        )
    )
