"""`report_usage`: handlers (async and plain) report tokens; the report sums them per agent,
tenant and model; bad figures and calls outside a handler are library errors."""

from __future__ import annotations

import asyncio

import pytest

import swarmbalancer
from swarmbalancer import Balancer, NotRunning, TaskRejected, report_usage
from swarmbalancer.model import Task


async def llm(task: Task) -> int:
    report_usage(input_tokens=10, output_tokens=task.payload, model="small", cost=0.5)
    await asyncio.sleep(0)
    report_usage(input_tokens=1, model="big")
    return int(task.payload)


def plain(task: Task) -> int:
    report_usage(input_tokens=3, output_tokens=4, model="small")
    return int(task.payload)


@pytest.mark.timeout(10)
def test_usage_from_async_and_plain_handlers_adds_up_per_agent_tenant_and_model() -> None:
    async def main() -> dict[str, object]:
        async with Balancer({"strategy": "round_robin"}) as lb:
            lb.add_agent("a", llm)
            lb.add_agent("p", plain)
            assert lb.report()["token_usage"] is None
            handles = [await lb.submit(n, tenant="t1") for n in range(6)]
            await asyncio.gather(*handles)
            await lb.join()
            return lb.report()

    usage = asyncio.run(main())["token_usage"]
    assert isinstance(usage, dict)
    a, p = usage["per_agent"]["a"], usage["per_agent"]["p"]
    runs_a = a["reports"] // 2
    runs_p = p["reports"]
    assert runs_a + runs_p == 6
    assert a["input_tokens"] == 11 * runs_a
    assert p == {
        "input_tokens": 3 * runs_p,
        "output_tokens": 4 * runs_p,
        "cost": None,
        "reports": runs_p,
    }
    assert usage["input_tokens"] == a["input_tokens"] + p["input_tokens"]
    assert usage["per_tenant"]["t1"]["reports"] == usage["reports"]
    assert usage["per_model"]["big"]["input_tokens"] == runs_a
    assert usage["per_model"]["small"]["cost"] == pytest.approx(0.5 * runs_a)


def test_report_usage_outside_a_handler_raises_not_running() -> None:
    with pytest.raises(NotRunning, match="report_usage"):
        report_usage(input_tokens=1)


@pytest.mark.parametrize(
    ("field", "value"),
    [("input_tokens", -1), ("output_tokens", 1.5), ("cost", float("nan")), ("model", "")],
)
def test_bad_usage_is_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(TaskRejected, match=f"^{field}:"):
        report_usage(**{field: value})  # type: ignore[arg-type]


def test_report_usage_is_public() -> None:
    assert swarmbalancer.report_usage is report_usage
