"""The built-in demo swarm: agents of three speeds, mixed priorities, one agent failing a while."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarmbalancer.workload.schema import Workload, parse_workload

DEMO: dict[str, Any] = {
    "name": "demo",
    "description": (
        "12 agents of three speeds take 3,000 tasks over about 10 seconds; "
        "slow-3 fails every task from 2 s to 6 s and mid-1 slows down 3x from 4 s to 7 s."
    ),
    "seed": 2026,
    "agents": [
        {"id": "slow", "count": 6, "capacity": 1, "speed": 1.0, "region": "eu"},
        {"id": "mid", "count": 4, "capacity": 1, "speed": 2.0, "region": "eu"},
        {"id": "fast", "count": 2, "capacity": 2, "speed": 4.0, "region": "us"},
    ],
    "tasks": {
        "count": 3000,
        "work": {"dist": "lognormal", "mean": 0.05, "sigma": 0.8},
        "arrival": {"process": "poisson", "rate": 300},
        "priority": {"critical": 0.1, "high": 0.2, "normal": 0.5, "low": 0.2},
    },
    "faults": [
        {"agent": "slow-3", "from": 2.0, "until": 6.0, "error_rate": 1.0},
        {"agent": "mid-1", "from": 4.0, "until": 7.0, "slowdown": 3.0},
    ],
    "config": {"strategy": "adaptive", "failureThreshold": 3, "timeout": 2.0},
}


def demo_workload() -> Workload:
    """The demo as a validated workload."""
    return parse_workload(DEMO, Path.cwd())
