"""The task queues benchmarks/distbench.py measures swarmbalancer against, one small module per
peer: its no-op task, its warm-up task, its worker command and its producer (`peer()`)."""
