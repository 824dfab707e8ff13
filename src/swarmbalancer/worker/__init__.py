"""`swarmbalancer worker`: one agent of a swarm across machines, as its own process. It
registers in Redis, heartbeats, takes the leases the leader hands it, runs the user's handler
and reports the outcomes in batches (docs/distributed.md)."""

from swarmbalancer.worker.options import WorkerOptions
from swarmbalancer.worker.process import Worker

__all__ = ["Worker", "WorkerOptions"]
