"""Stores: where queues, leases, the agent registry and counters live."""

from swarmbalancer.store.base import Store
from swarmbalancer.store.memory import MemoryStore
from swarmbalancer.store.record import TaskRecord
from swarmbalancer.store.sqlite import SqliteStore
from swarmbalancer.store.url import open_store

__all__ = ["MemoryStore", "SqliteStore", "Store", "TaskRecord", "open_store"]
