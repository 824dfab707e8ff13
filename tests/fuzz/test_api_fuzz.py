"""Fuzzing the embedded API: `submit`, `submit_many`, `add_agent` and `remove_agent` with hostile
arguments, interleaved. Every call either succeeds or raises a library error (one line, a
`SwarmBalancerError`), never anything else; whatever was accepted then finishes (no hang), and the
report is strict JSON with every accepted task accounted for."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.strategies import JUNK, NUMBERS, TEXT, TIME_LIMIT, fuzz_settings
from swarmbalancer import Balancer, Job
from swarmbalancer.errors import SwarmBalancerError

OPTIONAL = st.one_of(st.none(), JUNK)
SUBMIT_KEYWORDS = st.fixed_dictionaries(
    {},
    optional={
        "priority": st.one_of(
            st.sampled_from(["critical", "high", "normal", "low", "background", "HIGH", "urgent"]),
            NUMBERS,
            JUNK,
        ),
        "tenant": OPTIONAL,
        "deadline": st.one_of(st.none(), NUMBERS, JUNK),
        "within": st.one_of(st.none(), NUMBERS, JUNK),
        "estimate": st.one_of(st.none(), NUMBERS, JUNK),
        "affinity": st.one_of(st.none(), st.sampled_from(["a0", "eu", ["a1", "us"]]), JUNK),
        "region": st.one_of(st.none(), st.sampled_from(["eu", "us"]), JUNK),
        "idempotency_key": st.one_of(st.none(), st.sampled_from(["k1", "k2"]), JUNK),
        "task_id": st.one_of(st.none(), st.sampled_from(["t1", "t2"]), JUNK),
        "max_retries": st.one_of(st.none(), NUMBERS, JUNK),
        "period": st.one_of(st.none(), NUMBERS, JUNK),
    },
)
AGENT_KEYWORDS = st.fixed_dictionaries(
    {},
    optional={
        "capacity": st.one_of(st.integers(-2, 4), NUMBERS, JUNK),
        "weight": st.one_of(NUMBERS, JUNK),
        "region": st.one_of(st.none(), st.sampled_from(["eu", "us"]), JUNK),
        "cost": st.one_of(NUMBERS, JUNK),
        "speed_hint": st.one_of(st.none(), NUMBERS, JUNK),
        "tags": st.one_of(st.lists(TEXT, max_size=3), JUNK),
    },
)
AGENT_IDS = st.one_of(st.sampled_from(["a0", "a1", "a2"]), JUNK)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), SUBMIT_KEYWORDS),
        st.tuples(st.just("many"), st.lists(SUBMIT_KEYWORDS, max_size=3)),
        st.tuples(st.just("add"), st.tuples(AGENT_IDS, AGENT_KEYWORDS)),
        st.tuples(st.just("remove"), AGENT_IDS),
    ),
    max_size=12,
)


async def _noop(task: Any) -> str:
    return "ok"


def _library_error(exc: BaseException) -> None:
    assert isinstance(exc, SwarmBalancerError), f"{type(exc).__name__}: {exc}"
    assert "\n" not in str(exc), str(exc)


async def _play(operations: list[tuple[str, Any]]) -> dict[str, Any]:
    lb = Balancer({"parkTimeout": 0.5, "retryBackoff": 0.001})
    lb.add_agent("base", _noop, capacity=2)
    handles = []
    async with lb:
        for kind, args in operations:
            try:
                if kind == "submit":
                    handles.append(await lb.submit({"n": 1}, **args))
                elif kind == "many":
                    handles += await lb.submit_many([Job({"n": 2}, **kw) for kw in args])
                elif kind == "add":
                    agent_id, keywords = args
                    lb.add_agent(agent_id, _noop, **keywords)
                else:
                    lb.remove_agent(args)
            except Exception as exc:
                _library_error(exc)
        await asyncio.wait_for(lb.join(), 10)
    for handle in handles:
        assert handle.done()
    return lb.report()


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(150)
@given(operations=OPERATIONS)
def test_every_api_call_succeeds_or_raises_a_library_error_and_nothing_hangs(
    operations: list[tuple[str, Any]],
) -> None:
    report = asyncio.run(_play(operations))
    json.dumps(report, allow_nan=False)
    assert report["lost"] == 0 and report["open"] == 0
    assert report["completed"] + report["failed"] + report["cancelled"] == report["accepted"]
