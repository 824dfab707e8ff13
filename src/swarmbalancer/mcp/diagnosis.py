"""A minimal ranked diagnosis for `bottleneck_analyze`: failing, slow and saturated agents and
queue growth, each with its evidence and a suggested setting. One function, so a fuller
diagnosis module can replace it without touching the tools."""

from __future__ import annotations

from statistics import median
from typing import Any

#: A failed-attempt share at or above this, over at least `MIN_ATTEMPTS`, marks a failing agent.
ERROR_SHARE = 0.2
MIN_ATTEMPTS = 5
#: A learned speed below this fraction of the swarm's median marks a slow agent.
SLOW_FRACTION = 0.5


def diagnose(
    report: dict[str, Any], agents: list[dict[str, Any]], open_trend: float | None
) -> list[dict[str, Any]]:
    """Findings, most severe first (`severity` in [0, 1]); empty when nothing stands out.

    `agents` are the adapter's live rows, `open_trend` the change of unfinished tasks per
    second since the previous look (None when there was none)."""
    findings: list[dict[str, Any]] = []
    totals = {row["id"]: row for row in report["per_agent"]}
    for row in agents:
        total = totals.get(row["id"], {})
        done, failed = total.get("completed", 0), total.get("failed", 0)
        attempts = done + failed
        share = failed / attempts if attempts else None
        breaker = row["breaker_state"]
        if breaker in ("open", "half_open") or (
            share is not None and attempts >= MIN_ATTEMPTS and share >= ERROR_SHARE
        ):
            findings.append(
                {
                    "kind": "failing_agent",
                    "subject": row["id"],
                    "severity": 1.0 if breaker == "open" else max(share or 0.0, 0.5),
                    "evidence": {
                        "breaker_state": breaker,
                        "failed_attempts": failed,
                        "attempts": attempts,
                        "error_share": share,
                    },
                    "suggestion": "inspect the agent; failureThreshold and timeout decide how "
                    "soon its breaker opens and how long it rests",
                }
            )
        if row["in_flight"] >= row["capacity"] and row["queued"] > 0:
            findings.append(
                {
                    "kind": "saturated_agent",
                    "subject": row["id"],
                    "severity": min(1.0, row["queued"] / (row["queued"] + row["capacity"])),
                    "evidence": {
                        "in_flight": row["in_flight"],
                        "capacity": row["capacity"],
                        "queued": row["queued"],
                    },
                    "suggestion": "add capacity or agents; a lower stealThreshold lets idle "
                    "agents take its queue sooner",
                }
            )
    speeds = [row["learned_speed"] for row in agents if row["learned_speed"] is not None]
    if len(speeds) >= 2:
        typical = median(speeds)
        for row in agents:
            speed = row["learned_speed"]
            if speed is not None and typical > 0 and speed < SLOW_FRACTION * typical:
                findings.append(
                    {
                        "kind": "slow_agent",
                        "subject": row["id"],
                        "severity": min(1.0, 1 - speed / typical),
                        "evidence": {"learned_speed": speed, "median_speed": typical},
                        "suggestion": "the adaptive strategy routes by learned speed; "
                        "slowCallDuration lets the breaker rest an agent that slows down",
                    }
                )
    capacity = sum(row["capacity"] for row in agents if not row["draining"])
    if open_trend is not None and open_trend > 0 and report["open"] > capacity:
        findings.append(
            {
                "kind": "queue_growth",
                "subject": "task-queue",
                "severity": min(1.0, report["open"] / max(1, 10 * capacity)),
                "evidence": {
                    "open": report["open"],
                    "open_per_s": open_trend,
                    "capacity": capacity,
                },
                "suggestion": "tasks arrive faster than the swarm finishes them: add agents, "
                "or bound the queue with maxQueueSize",
            }
        )
    findings.sort(key=lambda f: -float(f["severity"]))
    return findings
