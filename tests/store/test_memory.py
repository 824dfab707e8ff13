"""The memory store against the store contract."""

from __future__ import annotations

from store.contract import StoreContract
from swarmbalancer.config import BalancerConfig
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.base import Store
from swarmbalancer.store.memory import MemoryStore


class TestMemoryStore(StoreContract):
    def make_store(self) -> Store:
        cfg = BalancerConfig()
        return MemoryStore(lambda: LevelQueue.from_config(cfg))
