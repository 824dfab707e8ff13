"""Simulation against reality: `simulate` and `run` of the same workload and strategy.

    uv run python benchmarks/fidelity.py [--repeat 3] [--strategies adaptive,round_robin]

For every workload in ../shared/workloads/ and each strategy, prints the simulated makespan, the
median real makespan of `--repeat` runs and their ratio, then checks the acceptance bar: every
ratio within 10%, and the strategies ranked the same way by makespan in both.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

from swarmbalancer.config import load_config
from swarmbalancer.runtime.runner import run_workload
from swarmbalancer.sim.simulate import simulate
from swarmbalancer.workload import load_workload

WORKLOADS = Path(__file__).resolve().parents[2] / "shared" / "workloads"
TOLERANCE = 0.10


def measure(path: Path, strategy: str, repeat: int) -> tuple[float, float, int]:
    """(simulated makespan, median real makespan, tasks lost in any real run)."""
    workload = load_workload(path)
    config = load_config({"strategy": strategy})
    simulated = simulate(workload, config)["makespan_s"]
    reports = [asyncio.run(run_workload(workload, config)) for _ in range(repeat)]
    real = statistics.median(r["makespan_s"] for r in reports)
    return simulated, real, max(r["lost"] for r in reports)


def ranking(makespans: dict[str, float]) -> list[str]:
    """Strategies from fastest to slowest; within 1% counts as a tie (kept in name order)."""
    ordered = sorted(makespans, key=lambda s: (round(makespans[s] / min(makespans.values()), 2), s))
    return ordered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strategies", default="adaptive,round_robin")
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    ok = True
    print(f"{'workload':16} {'strategy':18} {'simulated s':>12} {'real s':>9} {'real/sim':>9}")
    for path in sorted(WORKLOADS.glob("*.yaml")):
        sims: dict[str, float] = {}
        reals: dict[str, float] = {}
        for strategy in strategies:
            sims[strategy], reals[strategy], lost = measure(path, strategy, args.repeat)
            ratio = reals[strategy] / sims[strategy]
            ok &= abs(ratio - 1) <= TOLERANCE and lost == 0
            print(
                f"{path.stem:16} {strategy:18} {sims[strategy]:12.3f} "
                f"{reals[strategy]:9.3f} {ratio:9.3f}",
                flush=True,
            )
        same = ranking(sims) == ranking(reals)
        ok &= same
        print(f"{'':16} ranking by makespan: {'same' if same else 'DIFFERENT'}")
    print("fidelity: PASS" if ok else "fidelity: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
