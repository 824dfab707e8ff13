"""Upper (and a few lower) limits on workload values, so that every valid workload can be
generated, simulated and reported with finite numbers and bounded memory. Each limit is documented
with its reason in docs/workloads.md ("Limits").
"""

from __future__ import annotations

#: Tasks per workload: a million simulate in about 35 s, so ten million is the largest run anyone
#: waits for (and `run` holds every task record in memory).
MAX_TASKS = 10_000_000
#: Agents per workload, all groups together: each costs memory and per-agent report rows.
MAX_AGENTS = 100_000
#: Concurrent slots of one agent: a synthetic agent keeps one timeline per slot.
MAX_CAPACITY = 10_000
#: Slots over all agents (count x capacity): bounds the synthetic swarm's memory in `run`.
MAX_SLOTS = 1_000_000
#: Any time or duration, in seconds (about 31.7 years): at 1e9 s a float still resolves 0.2 us.
MAX_SECONDS = 1e9
#: Agent speeds: a million-fold spread each way keeps every duration (work / speed) finite.
MIN_SPEED, MAX_SPEED = 1e-6, 1e6
#: Weights (agents, tenants) and costs: twelve orders of magnitude apart at most, so fair-share
#: virtual times (work / weight) and the router's cost terms stay finite.
MIN_WEIGHT, MAX_WEIGHT = 1e-6, 1e6
MAX_COST = 1e9
#: Log-space spread of log-normal work and estimate noise: sigma = 10 already puts the median
#: 1e-22 of the mean; with it every sample stays below mean * e^121 (a normal draw is < 12.2).
MAX_SIGMA = 10.0
#: A slowdown, a deadline slack or a Pareto shape beyond a million changes nothing (a Pareto of
#: alpha 1e6 is constant work) but overflows products.
MAX_FACTOR = 1e6
#: Arrival rates per second: from one per 30 years to a billion per second.
MIN_RATE, MAX_RATE = 1e-9, 1e9
#: Shortest diurnal period: keeps 2*pi*t/period finite over every reachable time.
MIN_PERIOD = 1e-3
#: A bursty cycle must expect this many arrivals (on_rate*on + off_rate*off): fewer would make the
#: generator step through about 2/x empty phases per task, slower than simulating the task.
MIN_BURST_ARRIVALS = 0.01
#: Seeds are 64-bit integers, signed or unsigned.
MIN_SEED, MAX_SEED = -(2**63), 2**64 - 1
#: Largest trace file (task or arrival trace) read, in bytes.
MAX_TRACE_BYTES = 256 * 1024 * 1024
