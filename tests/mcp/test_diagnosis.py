"""The minimal diagnosis behind `bottleneck_analyze`: what it flags, with what evidence, ranked."""

from __future__ import annotations

from typing import Any

from swarmbalancer.mcp.diagnosis import diagnose


def agent(agent_id: str, **fields: Any) -> dict[str, Any]:
    row = {"id": agent_id, "capacity": 1, "in_flight": 0, "queued": 0, "learned_speed": 1.0,
           "breaker_state": "closed", "draining": False}  # fmt: skip
    return {**row, **fields}


def report(per_agent: list[dict[str, Any]], open_tasks: int = 0) -> dict[str, Any]:
    return {"per_agent": per_agent, "open": open_tasks}


def test_a_quiet_swarm_has_no_findings() -> None:
    rows = [agent("a"), agent("b")]
    totals = [{"id": "a", "completed": 10, "failed": 0}, {"id": "b", "completed": 9, "failed": 1}]
    assert diagnose(report(totals), rows, open_trend=0.0) == []


def test_an_open_breaker_ranks_first_then_saturation_and_slowness() -> None:
    rows = [
        agent("ok"),
        agent("busy", in_flight=1, queued=3),
        agent("broken", breaker_state="open"),
        agent("slow", learned_speed=0.2),
    ]
    findings = diagnose(report([{"id": "broken", "completed": 0, "failed": 3}]), rows, None)
    assert [(f["kind"], f["subject"]) for f in findings] == [
        ("failing_agent", "broken"),
        ("slow_agent", "slow"),
        ("saturated_agent", "busy"),
    ]
    assert findings[0]["evidence"]["failed_attempts"] == 3
    assert findings[1]["evidence"] == {"learned_speed": 0.2, "median_speed": 1.0}


def test_a_high_error_share_flags_an_agent_whose_breaker_is_still_closed() -> None:
    totals = [{"id": "a", "completed": 6, "failed": 4}]
    (finding,) = diagnose(report(totals), [agent("a")], None)
    assert finding["kind"] == "failing_agent" and finding["evidence"]["error_share"] == 0.4


def test_queue_growth_needs_a_rising_trend_and_more_open_tasks_than_slots() -> None:
    rows = [agent("a"), agent("b")]
    assert diagnose(report([], open_tasks=50), rows, open_trend=None) == []
    assert diagnose(report([], open_tasks=50), rows, open_trend=-3.0) == []
    (growth,) = diagnose(report([], open_tasks=50), rows, open_trend=4.0)
    assert growth["kind"] == "queue_growth"
    assert growth["evidence"] == {"open": 50, "open_per_s": 4.0, "capacity": 2}
