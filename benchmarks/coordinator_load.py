"""How many no-op tasks per second one `swarmbalancer coordinator` process moves, and what each
task costs it in CPU: a local redis-server, the coordinator, two worker processes written from
the wire formats (not `swarmbalancer worker`: this measures the leader alone), and the rows of
N tasks pushed by one producer in batches of 1000 (as `submit.lua` leaves them).

    ./scripts/uv run --frozen python benchmarks/coordinator_load.py [--tasks N] [--capacity C]

It prints tasks/s end to end (first submit to last reply) and the CPU seconds each process
used. The machine's other load changes the figures a lot; compare runs made together.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from redis.client import Redis
from redis.exceptions import RedisError

from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.rows import new_row
from swarmbalancer.model import Task

SWARM = "bench"

#: A worker: register, beat every half second, take up to 1000 ready entries at a time, report
#: each as done with its payload (report.lua's check, inline: the lease names this worker).
WORKER = r"""
import json, os, socket, sys, time
from redis.client import Redis
from redis.exceptions import RedisError
port, name, capacity = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
p = "sb:{%s}:" % sys.argv[4]
r = Redis(port=port)
REPORT = '''
local n = 0
for i = 2, #ARGV do
  local o = cjson.decode(ARGV[i])
  local held = redis.call('HGET', KEYS[1], o.lease)
  if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then
    redis.call('HDEL', KEYS[1], o.lease)
    redis.call('RPUSH', KEYS[2], ARGV[i])
    n = n + 1
  else
    redis.call('HINCRBY', KEYS[3], 'late_results', 1)
  end
end
return n
'''
report = r.register_script(REPORT)
def now():
    s, us = r.time()
    return s + us / 1e6
reg = {"id": name, "capacity": capacity, "region": None, "weight": 1.0, "cost": 0.0,
       "speed_hint": None, "host": socket.gethostname(), "pid": os.getpid(), "draining": False}
r.hset(p + "agents", name, json.dumps(reg))
r.hset(p + "beats", name, now())
r.rpush(p + "events", json.dumps({"event": "register", "agent": name}))
done = '{"lease":"%s","task":%s,"agent":"' + name + '","ok":true,"result":%s,"error":null,'
done += '"retryable":true,"retry_after":null,"runtime":0.0,"usage":null}'
last = 0.0
while True:
    if time.monotonic() - last > 0.5:
        r.hset(p + "beats", name, now())
        last = time.monotonic()
    found = r.blmpop(0.2, 1, p + "ready:" + name, direction="LEFT", count=1000)
    if found:
        outs = []
        for raw in found[1]:
            e = json.loads(raw)
            outs.append(done % (e["lease"], json.dumps(e["task"]), json.dumps(e["payload"])))
        report(keys=[p + "leases", p + "outcomes", p + "counters"], args=[name, *outs])
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batches(count: int) -> list[list[tuple[str, str]]]:
    """The rows of `count` no-op tasks (payload: their number), 1000 per batch."""
    out = []
    wall = time.time()
    for first in range(0, count, 1000):
        batch = []
        for n in range(first, min(count, first + 1000)):
            task = Task.create(n, now=0.0, task_id=f"t{n}")
            row = json.loads(new_row(task, client="c1", wall=wall, max_payload_bytes=1 << 20))
            row["seq"] = n + 1
            batch.append((task.id, json.dumps(row, separators=(",", ":"))))
        out.append(batch)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--capacity", type=int, default=1000, help="slots per worker")
    options = parser.parse_args()
    keys = SwarmKeys(SWARM)
    rows = batches(options.tasks)
    with tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", folder,
             "--appendonly", "yes", "--save", "", "--logfile", f"{folder}/redis.log"]
        )  # fmt: skip
        processes: list[subprocess.Popen[bytes]] = [server]
        try:
            r = Redis(port=port)
            _wait(lambda: _ping(r))
            url = f"redis://127.0.0.1:{port}/0"
            coordinator = subprocess.Popen(
                [sys.executable, "-m", "swarmbalancer", "coordinator", "--store", url,
                 "--swarm-id", SWARM],
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            processes.append(coordinator)
            for i in range(2):
                worker = [sys.executable, "-c", WORKER, str(port), f"w{i}"]
                processes.append(subprocess.Popen([*worker, str(options.capacity), SWARM]))
            _wait(lambda: bool(r.get(keys.report)))  # the leader writes it every second
            time.sleep(1.0)  # the workers have registered
            before = {p.pid: cpu_seconds(p.pid) for p in processes}
            start = time.perf_counter()
            for batch in rows:
                pipe = r.pipeline(transaction=False)
                pipe.hset(keys.tasks, mapping=dict(batch))
                pipe.rpush(keys.inbox, *[task_id for task_id, _ in batch])
                pipe.execute()
            got = 0
            while got < options.tasks:
                found = r.blmpop(30, 1, keys.reply("c1"), direction="LEFT", count=1000)
                if not found:
                    sys.exit(f"only {got} of {options.tasks} replies came")
                got += len(found[1])
            elapsed = time.perf_counter() - start
            used = {p.pid: cpu_seconds(p.pid) - before[p.pid] for p in processes}
            workers = sum(used[p.pid] for p in processes[2:])
            print(
                f"{options.tasks} tasks in {elapsed:.2f}s: {options.tasks / elapsed:,.0f} tasks/s; "
                f"CPU s: coordinator {used[coordinator.pid]:.2f} "
                f"({used[coordinator.pid] / options.tasks * 1e6:.0f} us/task), "
                f"redis-server {used[server.pid]:.2f}, workers {workers:.2f}"
            )
        finally:
            for process in reversed(processes):
                process.kill()
                process.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(r: Redis) -> bool:
    try:
        return bool(r.ping())
    except RedisError:  # not listening yet
        return False


def _wait(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit("timed out starting the swarm")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
