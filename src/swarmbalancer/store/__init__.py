"""Stores: where queues, leases, the agent registry and counters live."""

from swarmbalancer.store.base import Store
from swarmbalancer.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]
