"""`swarmbalancer coordinator`: the configuration from the usual layers, logging to stderr,
then the elected coordinator process (cluster/coordinator.py) until it stops."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from pathlib import Path

from swarmbalancer.cli.settings import effective_config, parse_json_option, read_file
from swarmbalancer.config import canonical_key

#: The coordinator's `prefetch` unless configured: one lease per worker slot ahead.
REMOTE_PREFETCH = 1


def run(
    store: str,
    swarm_id: str | None,
    config: str | None,
    file: Path,
    lease_ttl: float | None,
    heartbeat_timeout: float,
) -> int:
    """Run a coordinator; its exit status (0 stopped by a signal, 3 the lease was lost).

    Unless the file or `--config` sets `parkTimeout`, tasks wait for a worker indefinitely:
    across machines, workers may well start after the tasks are submitted. Unless it sets
    `prefetch`, it is 1: each worker holds one lease per slot ahead in its ready list, so it
    never idles for the round trip to the leader between tasks (cluster/prefetch.py).
    """
    from swarmbalancer.cluster.coordinator import CoordinatorOptions, run_coordinator

    layers = [read_file(file), parse_json_option(config)]
    if not any(canonical_key(key) == "parkTimeout" for layer in layers for key in layer):
        layers.append({"parkTimeout": None})
    if not any(canonical_key(key) == "prefetch" for layer in layers for key in layer):
        layers.append({"prefetch": REMOTE_PREFETCH})
    options = CoordinatorOptions(
        store=store,
        swarm_id=swarm_id,
        config=effective_config(*layers),
        lease_ttl=lease_ttl,
        heartbeat_timeout=heartbeat_timeout,
    )
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Each task's round trip allocates a few short-lived objects; the default collector, which
    # walks the youngest generation every 700 allocations and everything imported at each
    # full pass, took about a tenth of the process's CPU under load (measured): collect less
    # often, and never the objects that exist at start.
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    return asyncio.run(run_coordinator(options))
