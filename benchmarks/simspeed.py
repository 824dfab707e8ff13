"""Speed of the discrete-event simulator: one million tasks over a thousand agents, one core.

    uv run python benchmarks/simspeed.py [--tasks 1000000] [--agents 1000] [--strategy adaptive]
                                         [--config '{"adaptiveCandidates": 16}'] [--profile FILE]

The synthetic workload has agents of three speeds (half at 1, 30% at 2, 20% at 4), exponential
work of mean 10 ms and Poisson arrivals at 85% of the swarm's capacity. Prints the wall time of
task generation alone (streamed, as the simulation does) and of the simulation (generation
included), tasks/s, simulator events/s and the peak RSS of the process (`resource.getrusage`).
`--profile FILE` writes cProfile statistics of the simulation to FILE and prints the twenty most
expensive functions.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import sys
import time
from pathlib import Path
from typing import Any

from swarmbalancer.sim.simulate import WorkloadSimulation
from swarmbalancer.workload import iter_tasks, parse_workload

MEAN_WORK = 0.01
LOAD = 0.85
SPEEDS = ((0.5, 1.0), (0.3, 2.0), (0.2, 4.0))


def workload(tasks: int, agents: int, config: dict[str, Any]) -> dict[str, Any]:
    """The benchmark workload as a workload document."""
    groups = []
    left = agents
    for i, (share, speed) in enumerate(SPEEDS):
        count = left if i == len(SPEEDS) - 1 else max(1, round(agents * share))
        left -= count
        groups.append({"id": f"s{speed:g}", "count": count, "speed": speed})
    capacity = sum(g["count"] * g["speed"] for g in groups)  # work per second, capacity 1 each
    rate = LOAD * capacity / MEAN_WORK
    return {
        "name": "simspeed",
        "seed": 1,
        "agents": groups,
        "tasks": {
            "count": tasks,
            "work": {"dist": "exponential", "mean": MEAN_WORK},
            "arrival": {"process": "poisson", "rate": rate},
        },
        "config": config,
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--strategy", default="adaptive")
    parser.add_argument("--config", default="{}", help="more configuration keys, as JSON")
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()

    config = {**json.loads(args.config), "strategy": args.strategy}
    spec = parse_workload(workload(args.tasks, args.agents, config), Path.cwd())
    start = time.perf_counter()
    generated = sum(1 for _ in iter_tasks(spec))
    gen_s = time.perf_counter() - start
    print(f"workload:  {generated:,} tasks over {args.agents:,} agents, config {config}")
    print(f"generate:  {gen_s:8.2f} s  (the task stream alone, not kept)")

    sim = WorkloadSimulation(spec, spec.balancer_config())
    profiler = cProfile.Profile() if args.profile else None
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    report = sim.run()
    if profiler is not None:
        profiler.disable()
    wall = time.perf_counter() - start
    events = sim.driver.loop.events

    print(f"simulate:  {wall:8.2f} s  (generation included)")
    print(f"tasks/s:   {report['completed'] / wall:12,.0f}")
    print(f"events/s:  {events / wall:12,.0f}  ({events:,} events)")
    print(f"peak RSS:  {peak_rss_mb():8.0f} MiB")
    ratio = report["makespan_s"] / report["lower_bound_s"]
    print(
        f"report:    completed {report['completed']:,}, lost {report['lost']}, "
        f"makespan {report['makespan_s']:.3f} s ({ratio:.3f} x bound), "
        f"sojourn p99 {report['sojourn_ms']['p99']:.2f} ms"
    )
    if profiler is not None:
        profiler.dump_stats(args.profile)
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
