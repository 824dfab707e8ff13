"""Balance through the public API, with agents whose speeds the balancer is not told.

    uv run python benchmarks/balance_api.py [--tasks 1000] [--repeat 3] [--seed 7] [--same-tasks]
        [--scenarios burst,poisson] [--runners adaptive,queue] [--quick] [--json]

Measured as a user would: `from swarmbalancer import Balancer`, one async handler per agent that
`await asyncio.sleep(w / speed)` (the handler knows its own speed, the balancer does not: no
`speed=` argument, only `weight=speed` where the scenario says so), results gathered by awaiting
the handles. Next to every strategy run, in the same process and the same rounds, two baselines a
user could write instead: one coroutine per agent slot, each sleeping as that agent would, pulling
from one `asyncio.Queue` in FIFO order, and the same pulling from an `asyncio.PriorityQueue` keyed
by -estimate (longest first; in a scenario without estimates it still knows the true sizes, so it
is an oracle there).

Tasks: Pareto work (alpha 1.5, capped at 0.15 s) drawn from `random.Random(seed)`, with the
scale xm chosen so that the mean of the *capped* distribution is 0.02 s (see `pareto_scale`).
Scenarios: `SCENARIOS` below. Each runner's makespan (first submission to the moment all its
results are in hand) is divided by the arrival-aware lower bound
max(max_j(a_j + w_j / max_i s_i), max_t(t + W(>= t) / sum_i s_i c_i)), computed here from the true
speeds and the scheduled arrivals a_j (so a slow submit path cannot raise its own bound). Sojourn:
a task's scheduled arrival to the end of its handler. Each runner runs `--repeat` rounds,
interleaved (each round runs every runner once, starting at a different runner each round). Round
r draws its task set with seed `--seed` + r (`--same-tasks`: every round on `--seed`'s set), so a
median speaks for typical task sets rather than one draw's tail; every runner of a round gets the
same set, and the acceptance checks take the median over rounds of the paired ratio (adaptive over
the baseline on the same set). The table shows medians; its LB is the median of the rounds'.
Every swarmbalancer run asserts that every handle resolved, its report counts every task
completed and none lost. The issue's acceptance checks follow the table as PASS/FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import json
import math
import random
import statistics
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from swarmbalancer import Balancer, TaskHandle
from swarmbalancer.config import STRATEGIES
from swarmbalancer.metrics.stats import percentile  # the report's own definition
from swarmbalancer.native import build_label
from swarmbalancer.workload.synthetic import DEFAULT_CONTINUITY

ALPHA = 1.5
MEAN_WORK = 0.02  # seconds at speed 1, mean of the capped distribution
CAP_WORK = 0.15
FIFO = "queue-fifo"
LONGEST = "queue-longest-first"


# -- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentShape:
    """One agent as the benchmark knows it: its true speed and its slots."""

    speed: float
    capacity: int = 1


def swarm(*groups: tuple[int, float, tuple[int, ...]]) -> tuple[AgentShape, ...]:
    """Agents from (count, speed, capacities) groups; capacities repeat cyclically in a group."""
    return tuple(
        AgentShape(speed, caps[k % len(caps)])
        for count, speed, caps in groups
        for k in range(count)
    )


SCENARIO_1 = swarm((6, 1.0, (1,)), (3, 2.0, (1,)), (3, 4.0, (1,)))


@dataclass(frozen=True, slots=True)
class Scenario:
    """A swarm, how tasks arrive and what the balancer is told; `checks` are the issue's
    acceptance checks that apply to it (a, b, c or d)."""

    summary: str
    agents: tuple[AgentShape, ...] = SCENARIO_1
    estimates: bool = True
    weighted: bool = True
    load: float | None = None  # Poisson arrivals at this share of capacity; None: one burst
    deadlines: bool = False  # handlers sleep to absolute per-slot deadlines
    checks: tuple[str, ...] = ()


SCENARIOS: dict[str, Scenario] = {
    "burst": Scenario("scenario 1: 12 agents (6x1, 3x2, 3x4), weight=speed", checks=("a",)),
    "unweighted": Scenario("scenario 1 without weights", weighted=False, checks=("a",)),
    "capacity": Scenario(
        "capacities 1/2/4 within each speed group",
        agents=swarm((6, 1.0, (1, 2, 4)), (3, 2.0, (1, 2, 4)), (3, 4.0, (1, 2, 4))),
        checks=("a",),
    ),
    "no-estimates": Scenario("scenario 1, no estimates", estimates=False, checks=("b",)),
    "spread10": Scenario(
        "10x speed spread (6x1, 3x3, 3x10)",
        agents=swarm((6, 1.0, (1,)), (3, 3.0, (1,)), (3, 10.0, (1,))),
        checks=("a",),
    ),
    "poisson": Scenario("scenario 1, Poisson arrivals at 85% load", load=0.85, checks=("c",)),
    "deadlines": Scenario(
        "scenario 1, handlers sleep to absolute per-slot deadlines", deadlines=True, checks=("d",)
    ),
}


# -- tasks and the lower bound ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One task: its work (seconds at speed 1) and scheduled arrival (seconds after the start)."""

    work: float
    at: float = 0.0


def capped_pareto_mean(xm: float, alpha: float, cap: float) -> float:
    """E[min(X, cap)] for X ~ Pareto(xm, alpha) and cap >= xm:
    (alpha*xm - xm^alpha * cap^(1-alpha)) / (alpha-1), the mean less the integral of the tail."""
    return float(alpha * xm - xm**alpha * cap ** (1.0 - alpha)) / (alpha - 1.0)


def pareto_scale(mean: float, alpha: float, cap: float) -> float:
    """The scale xm whose capped mean is `mean`, by bisection (the capped mean grows with xm)."""
    low, high = 0.0, min(mean, cap)
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if capped_pareto_mean(mid, alpha, cap) < mean else (low, mid)
    return (low + high) / 2


def make_jobs(scenario: Scenario, n: int, seed: int) -> list[Job]:
    """n Pareto tasks; with a load, Poisson arrivals at that share of sum_i s_i c_i."""
    work_rng, arrival_rng = random.Random(seed), random.Random(seed + 1)
    xm = pareto_scale(MEAN_WORK, ALPHA, CAP_WORK)
    works = [min(CAP_WORK, xm * work_rng.paretovariate(ALPHA)) for _ in range(n)]
    if scenario.load is None:
        return [Job(w) for w in works]
    rate = scenario.load * service_rate(scenario.agents) / MEAN_WORK
    at, jobs = 0.0, []
    for w in works:
        at += arrival_rng.expovariate(rate)
        jobs.append(Job(w, at))
    return jobs


def service_rate(agents: Sequence[AgentShape]) -> float:
    """Work (seconds at speed 1) the whole swarm does per second: sum_i s_i c_i."""
    return sum(a.speed * a.capacity for a in agents)


def lower_bound(jobs: Sequence[Job], agents: Sequence[AgentShape]) -> float:
    """max(max_j(a_j + w_j / max s), max_t(t + W(>= t) / sum s_i c_i)); t ranges over arrivals,
    where the second term peaks (it grows between them and drops past each)."""
    fastest, rate = max(a.speed for a in agents), service_rate(agents)
    single = max(j.at + j.work / fastest for j in jobs)
    later, swarm_bound = 0.0, 0.0
    for job in sorted(jobs, key=lambda j: j.at, reverse=True):
        later += job.work
        swarm_bound = max(swarm_bound, job.at + later / rate)
    return max(single, swarm_bound)


# -- the agents' behaviour, shared by every runner --------------------------------------------


class Agent:
    """What an agent's handler does with work w: sleep w / speed, or, with deadlines, sleep to
    the absolute end of its slot's timeline (SyntheticAgent's rule: a start within the
    continuity of the slot's last end starts at that end), so timer overshoot never adds up."""

    def __init__(self, shape: AgentShape, deadlines: bool) -> None:
        self.shape = shape
        self.deadlines = deadlines
        self._free = [-math.inf] * shape.capacity  # min-heap of slot free times

    async def work(self, w: float) -> float:
        """Do w seconds of speed-1 work; returns the loop time when done."""
        loop = asyncio.get_running_loop()
        if not self.deadlines:
            await asyncio.sleep(w / self.shape.speed)
            return loop.time()
        now, free = loop.time(), self._free[0]
        start = free if free > now or now - free <= DEFAULT_CONTINUITY else now
        end = start + w / self.shape.speed
        heapq.heapreplace(self._free, end)
        await asyncio.sleep(max(0.0, end - loop.time()))
        return loop.time()


# -- runners ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """One run, in seconds after its first submission: when all results were in hand, and each
    task's end by index; `moved` is swarmbalancer's steals plus migrations."""

    makespan: float
    ends: list[float]
    moved: int | None = None


async def feed(
    jobs: Sequence[Job], origin: float, put: Callable[[int, Job], Awaitable[None]]
) -> None:
    """Hand every job to `put` at its scheduled arrival (loop time `origin` + at), in order."""
    loop = asyncio.get_running_loop()
    for i, job in enumerate(jobs):
        wait = origin + job.at - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        await put(i, job)


async def run_balancer(strategy: str, scenario: Scenario, jobs: Sequence[Job]) -> Run:
    """The public API: a Balancer with this strategy, one handler per agent, handles awaited."""
    loop = asyncio.get_running_loop()
    lb = Balancer({"strategy": strategy})
    for k, shape in enumerate(scenario.agents):
        agent = Agent(shape, scenario.deadlines)

        async def handle(task: Any, agent: Agent = agent) -> float:
            return await agent.work(task.payload)

        weight = shape.speed if scenario.weighted else 1.0
        lb.add_agent(f"agent{k}", handle, capacity=shape.capacity, weight=weight)
    handles: list[TaskHandle] = []

    async def submit(_: int, job: Job) -> None:
        estimate = job.work if scenario.estimates else None
        handles.append(await lb.submit(job.work, estimate=estimate))

    async with lb:
        origin = loop.time()
        await feed(jobs, origin, submit)
        ends = await asyncio.gather(*handles)
        makespan = loop.time() - origin
    report = lb.report()
    assert all(h.done() for h in handles) and len(ends) == len(jobs), "a handle did not resolve"
    assert report["completed"] == len(jobs) and report["lost"] == 0, report
    return Run(makespan, [e - origin for e in ends], report["steals"] + report["migrations"])


async def run_queue(longest_first: bool, scenario: Scenario, jobs: Sequence[Job]) -> Run:
    """One coroutine per agent slot pulling from one queue: FIFO, or longest estimate first."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[float, int, float]] = (
        asyncio.PriorityQueue() if longest_first else asyncio.Queue()
    )
    ends = [math.nan] * len(jobs)

    async def slot(agent: Agent) -> None:
        while True:
            _, i, w = await inbox.get()
            if i < 0:  # the stop sign, queued after every job
                return
            ends[i] = await agent.work(w)

    async def put(i: int, job: Job) -> None:
        await inbox.put((-job.work if longest_first else 0.0, i, job.work))

    agents = [Agent(shape, scenario.deadlines) for shape in scenario.agents]
    slots = [asyncio.create_task(slot(a)) for a in agents for _ in range(a.shape.capacity)]
    origin = loop.time()
    await feed(jobs, origin, put)
    for _ in slots:
        await inbox.put((math.inf, -1, 0.0))
    await asyncio.gather(*slots)
    makespan = loop.time() - origin
    assert not any(math.isnan(e) for e in ends), "a job was not run"
    return Run(makespan, [e - origin for e in ends])


Runner = Callable[[Scenario, Sequence[Job]], Coroutine[Any, Any, Run]]


def strategy_runner(strategy: str) -> Runner:
    """A runner for one swarmbalancer strategy."""

    def run(scenario: Scenario, jobs: Sequence[Job]) -> Coroutine[Any, Any, Run]:
        return run_balancer(strategy, scenario, jobs)

    return run


def queue_runner(longest_first: bool) -> Runner:
    """A runner for one queue baseline."""

    def run(scenario: Scenario, jobs: Sequence[Job]) -> Coroutine[Any, Any, Run]:
        return run_queue(longest_first, scenario, jobs)

    return run


def runners() -> dict[str, Runner]:
    """Every strategy, then the two queue baselines, by name."""
    table = {strategy: strategy_runner(strategy) for strategy in STRATEGIES}
    return table | {FIFO: queue_runner(False), LONGEST: queue_runner(True)}


# -- measuring and summarising ----------------------------------------------------------------


@dataclass(slots=True)
class Summary:
    """A runner's medians over its runs in one scenario (times in seconds, sojourns in ms)."""

    makespan: float
    ratio: float
    ratios: list[float]
    p50_ms: float
    p99_ms: float
    moved: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "makespan_s": round(self.makespan, 4),
            "makespan_over_lb": round(self.ratio, 4),
            "ratios": [round(r, 4) for r in self.ratios],
            "sojourn_p50_ms": round(self.p50_ms, 2),
            "sojourn_p99_ms": round(self.p99_ms, 2),
            "moved": self.moved,
        }


def summarise(runs: list[Run], rounds: Sequence[Round]) -> Summary:
    """Medians over the runs (run r on round r's task set) of makespan, makespan / that set's
    bound, sojourn p50/p99 and tasks moved; `ratios` stay in round order, so runners pair up."""
    sojourns = [
        [(end - job.at) * 1e3 for end, job in zip(r.ends, rnd.jobs, strict=True)]
        for r, rnd in zip(runs, rounds, strict=True)
    ]
    moved = [r.moved for r in runs if r.moved is not None]
    ratios = [r.makespan / rnd.bound for r, rnd in zip(runs, rounds, strict=True)]
    return Summary(
        makespan=statistics.median(r.makespan for r in runs),
        ratio=statistics.median(ratios),
        ratios=ratios,
        p50_ms=statistics.median(percentile(sorted(s), 50) for s in sojourns),
        p99_ms=statistics.median(percentile(sorted(s), 99) for s in sojourns),
        moved=statistics.median(moved) if moved else None,
    )


@dataclass(frozen=True, slots=True)
class Round:
    """One round's task set and its lower bound; every runner runs it once."""

    jobs: list[Job]
    bound: float


def measure(
    scenario: Scenario, rounds: Sequence[Round], chosen: dict[str, Runner]
) -> dict[str, list[Run]]:
    """Every chosen runner once per round, interleaved; round r starts at the r-th runner."""
    names = list(chosen)
    runs: dict[str, list[Run]] = {name: [] for name in names}
    for r, rnd in enumerate(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()  # no runner pays for the garbage another one left
            runs[name].append(asyncio.run(chosen[name](scenario, rnd.jobs)))
            print(f"  {name}: {runs[name][-1].makespan:.3f} s", file=sys.stderr)
    return runs


# -- acceptance checks ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One acceptance check of the issue on one scenario."""

    label: str
    scenario: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} ({self.label}) {self.scenario}: {self.detail}"


def paired(runner: Summary, baseline: Summary) -> float:
    """The median over rounds of runner / baseline makespan, each round's pair on one task set."""
    return statistics.median(a / b for a, b in zip(runner.ratios, baseline.ratios, strict=True))


def check(label: str, name: str, s: dict[str, Summary]) -> Check | None:
    """Check `label` on scenario `name`, or None when a runner it needs did not run."""
    need = {"a": (FIFO, LONGEST), "b": (FIFO,), "c": (FIFO,), "d": ()}[label]
    if "adaptive" not in s or any(n not in s for n in need):
        return None
    ad = s["adaptive"]
    if label == "a":
        fifo, lpt = paired(ad, s[FIFO]), paired(ad, s[LONGEST])
        ok = fifo <= 0.97 and lpt <= 1.02
        detail = f"adaptive/FIFO {fifo:.3f} (<= 0.97), adaptive/longest-first {lpt:.3f} (<= 1.02)"
    elif label == "b":
        fifo = paired(ad, s[FIFO])
        ok, detail = fifo <= 1.02, f"adaptive/FIFO makespan {fifo:.3f} (<= 1.02)"
    elif label == "c":
        mine, theirs = ad.p99_ms, s[FIFO].p99_ms
        ok = mine <= theirs
        detail = f"adaptive p99 sojourn {mine:.1f} ms, FIFO {theirs:.1f} ms (adaptive <= FIFO)"
    else:
        ok, detail = ad.ratio <= 1.08, f"adaptive makespan/LB {ad.ratio:.3f} (<= 1.08)"
    return Check(label, name, ok, detail)


# -- report -----------------------------------------------------------------------------------


def table(name: str, scenario: Scenario, n: int, bound: float, s: dict[str, Summary]) -> Table:
    """One scenario's Rich table, a row per runner."""
    out = Table(title=f"{name}: {scenario.summary}; {n} tasks, LB {bound:.3f} s")
    for column in ("runner", "makespan (s)", "makespan/LB", "min–max", "p50 (ms)", "p99 (ms)"):
        out.add_column(column, justify="left" if column == "runner" else "right")
    out.add_column("moved", justify="right")
    for runner, m in s.items():
        out.add_row(
            f"[bold]{runner}[/bold]" if runner == "adaptive" else runner,
            f"{m.makespan:.3f}",
            f"{m.ratio:.3f}",
            f"{min(m.ratios):.2f}–{max(m.ratios):.2f}",
            f"{m.p50_ms:,.1f}",
            f"{m.p99_ms:,.1f}",
            "-" if m.moved is None else f"{m.moved:g}",
        )
    return out


def pick(names: str | None, available: Sequence[str], what: str) -> list[str]:
    """The available names containing one of the comma-separated parts (all when None)."""
    if names is None:
        return list(available)
    parts = [p.strip() for p in names.split(",") if p.strip()]
    chosen = [a for a in available if any(p in a for p in parts)]
    if not chosen:
        raise SystemExit(f"--{what}: none of {available} matches {names!r}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7, help="round r draws its tasks with seed+r")
    parser.add_argument(
        "--same-tasks", action="store_true", help="every round on the task set of --seed"
    )
    parser.add_argument("--scenarios", help="comma-separated parts of scenario names")
    parser.add_argument("--runners", help="comma-separated parts of runner names")
    parser.add_argument("--quick", action="store_true", help="500 tasks, 1 run (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    tasks, repeat = (500, 1) if args.quick else (args.tasks, args.repeat)
    every = runners()
    chosen = {n: every[n] for n in pick(args.runners, list(every), "runners")}
    console = Console(width=120)
    console.print(f"swarmbalancer's hot path: {build_label()} (make native compiles it)")
    results: dict[str, Any] = {}
    checks: list[Check] = []
    for name in pick(args.scenarios, list(SCENARIOS), "scenarios"):
        scenario = SCENARIOS[name]
        seeds = [args.seed + (0 if args.same_tasks else r) for r in range(repeat)]
        rounds = [
            Round(jobs, lower_bound(jobs, scenario.agents))
            for jobs in (make_jobs(scenario, tasks, seed) for seed in seeds)
        ]
        bound = statistics.median(rnd.bound for rnd in rounds)
        print(f"{name} ({tasks} tasks, seeds {seeds}, LB {bound:.3f} s)", file=sys.stderr)
        runs = measure(scenario, rounds, chosen)
        summaries = {runner: summarise(r, rounds) for runner, r in runs.items()}
        results[name] = {
            "summary": scenario.summary,
            "tasks": tasks,
            "lower_bound_s": round(bound, 4),
            "runners": {runner: m.as_json() for runner, m in summaries.items()},
        }
        checks += [c for label in scenario.checks if (c := check(label, name, summaries))]
        if not args.json:
            console.print(table(name, scenario, tasks, bound, summaries))
    if args.json:
        checks_json = [
            {"check": c.label, "scenario": c.scenario, "pass": c.passed, "detail": c.detail}
            for c in checks
        ]
        meta = {"tasks": tasks, "repeat": repeat, "seed": args.seed, "same_tasks": args.same_tasks}
        print(json.dumps({**meta, "scenarios": results, "checks": checks_json}, indent=2))
    else:
        sets = (
            f"seed {args.seed}"
            if args.same_tasks
            else f"seeds {args.seed}..{args.seed + repeat - 1}"
        )
        print(f"median of {repeat} interleaved rounds per runner, task sets from {sets}")
        for c in checks:
            print(c.line())


if __name__ == "__main__":
    main()
