"""`swarmbalancer worker`: one agent of a swarm across machines, as its own process. It
registers in Redis, heartbeats, takes the leases the leader hands it, runs the user's handler
and reports the outcomes in batches (docs/distributed.md).

`process.Worker` is the process; `options.WorkerOptions` its settings. Nothing is imported
here, so the CLI can read the options without loading redis.
"""
