"""Bad input is a library error naming the argument; handler errors steer retries as asked."""

from __future__ import annotations

import asyncio
import json
import math
from importlib import resources
from typing import Any

import pytest

from swarmbalancer import (
    AgentError,
    Balancer,
    ConfigError,
    NonRetryable,
    RetryAfter,
    Task,
    TaskFailed,
    TaskRejected,
)


async def echo(task: Task) -> Any:
    return task.payload


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("keywords", "named"),
    [
        ({"estimate": math.inf}, "estimate"),
        ({"estimate": math.nan}, "estimate"),
        ({"within": math.inf}, "within"),
        ({"within": 10**400}, "within"),
        ({"deadline": 10**400}, "deadline"),
        ({"period": math.inf, "estimate": 1.0}, "period"),
        ({"period": 1.0}, "period"),
        ({"affinity": 5}, "affinity"),
        ({"affinity": [1, 2]}, "affinity"),
        ({"idempotency_key": ["unhashable"]}, "idempotency_key"),
        ({"idempotency_key": 7}, "idempotency_key"),
        ({"max_retries": 10**400}, "max_retries"),
        ({"priority": 1.5}, "priority"),
    ],
)
def test_bad_submit_arguments_are_rejected_naming_the_argument(
    keywords: dict[str, Any], named: str
) -> None:
    async def main() -> dict[str, Any]:
        lb = Balancer()
        lb.add_agent("a", echo)
        async with lb:
            with pytest.raises(TaskRejected, match=named):
                await lb.submit(None, **keywords)
        return lb.report()

    assert asyncio.run(main())["accepted"] == 0


@pytest.mark.timeout(10)
def test_deadlines_are_read_on_now_and_a_past_one_is_rejected() -> None:
    async def main() -> None:
        lb = Balancer()
        lb.add_agent("a", echo)
        async with lb:
            now = lb.now()
            assert lb.now() >= now
            with pytest.raises(TaskRejected, match=r"deadline.*past"):
                await lb.submit(None, deadline=now - 1.0)
            ok = await lb.submit(1, deadline=lb.now() + 10.0)
            assert await ok == 1 and ok.task.deadline is not None

    asyncio.run(main())


def test_non_string_configuration_keys_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="1"):
        Balancer({1: 2})  # type: ignore[dict-item]


@pytest.mark.timeout(10)
def test_agent_mistakes_are_agent_errors_naming_the_agent() -> None:
    async def main() -> None:
        lb = Balancer()
        lb.add_agent("a", echo)
        with pytest.raises(AgentError, match=r"'a'.*already registered"):
            lb.add_agent("a", echo)
        with pytest.raises(AgentError, match=r"'ghost'.*not registered"):
            lb.remove_agent("ghost")
        with pytest.raises(AgentError, match="handler"):
            lb.add_agent("b", "not callable")  # type: ignore[arg-type]
        async with lb:
            gate = asyncio.Event()

            async def waits(task: Task) -> None:
                await gate.wait()

            lb.add_agent("w", waits)
            busy = await lb.submit(None, affinity="w")
            await asyncio.sleep(0.01)
            lb.remove_agent("w")
            with pytest.raises(AgentError, match=r"'w'.*already being removed"):
                lb.remove_agent("w")
            with pytest.raises(AgentError, match=r"'w'.*still draining"):
                lb.add_agent("w", waits)
            gate.set()
            await busy
            lb.add_agent("w", waits)  # retired once its task ended: the id is free again

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_every_report_is_strict_json() -> None:
    async def main() -> list[dict[str, Any]]:
        lb = Balancer()
        reports = [lb.report()]
        lb.add_agent("a", echo)
        reports.append(lb.report())
        async with lb:
            await (await lb.submit(1, estimate=0.0))
            reports.append(lb.report())
        reports.append(lb.report())
        return reports

    for report in asyncio.run(main()):
        json.dumps(report, allow_nan=False)


def test_the_package_ships_a_py_typed_marker() -> None:
    assert resources.files("swarmbalancer").joinpath("py.typed").is_file()


@pytest.mark.timeout(10)
def test_non_retryable_errors_fail_at_once_by_wrapper_or_by_configured_class_name() -> None:
    class Invalid(ValueError):
        pass

    async def handler(task: Task) -> None:
        if task.payload == "wrapped":
            raise NonRetryable(KeyError("missing"))
        if task.payload == "configured":
            raise Invalid("bad input")
        raise RuntimeError("transient")

    async def main() -> dict[str, TaskFailed]:
        lb = Balancer({"maxRetries": 3, "retryBackoff": 0, "nonRetryable": ["ValueError"]})
        lb.add_agent("a", handler)
        out: dict[str, TaskFailed] = {}
        async with lb:
            for name in ("wrapped", "configured", "other"):
                with pytest.raises(TaskFailed) as caught:
                    await (await lb.submit(name))
                out[name] = caught.value
        return out

    failed = asyncio.run(main())
    assert failed["wrapped"].attempts == 1 and isinstance(failed["wrapped"].__cause__, KeyError)
    assert failed["configured"].attempts == 1
    assert isinstance(failed["configured"].__cause__, Invalid)
    assert failed["other"].attempts == 4


@pytest.mark.timeout(10)
def test_a_retry_after_hint_keeps_the_agent_out_of_routing_for_that_long() -> None:
    calls: list[tuple[str, float]] = []

    async def main() -> dict[str, Any]:
        lb = Balancer({"retryBackoff": 0, "strategy": "round_robin", "stealEnabled": False})
        limited = {"a": True}

        async def handler(task: Task) -> str:
            agent = task.agent_id or ""
            calls.append((agent, lb.now()))
            if agent == "a" and limited["a"]:
                limited["a"] = False
                raise RetryAfter(0.3)
            await asyncio.sleep(0.001)
            return agent

        lb.add_agent("a", handler)
        lb.add_agent("b", handler)
        lb.add_agent("c", handler)
        async with lb:
            first = await lb.submit("x", affinity=["a", "b"])
            assert await first == "b", "retried on another agent"
            held_from = next(t for a, t in calls if a == "a")
            for i in range(30):
                await (await lb.submit(i))
            await asyncio.sleep(max(0.0, held_from + 0.35 - lb.now()))
            for i in range(6):
                await (await lb.submit(i))
            back = [t for a, t in calls[1:] if a == "a"]
            assert back, "back in routing after the hold"
            assert all(t >= held_from + 0.3 for t in back), "never called while held"
        return lb.report()

    report = asyncio.run(main())
    assert report["failed"] == 0 and report["lost"] == 0


def test_retry_after_refuses_a_bad_number() -> None:
    with pytest.raises(ValueError, match="seconds"):
        RetryAfter(math.inf)
    with pytest.raises(TypeError, match="seconds"):
        RetryAfter("3")  # type: ignore[arg-type]
