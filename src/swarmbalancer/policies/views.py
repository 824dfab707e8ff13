"""Read-only views the pure policies take as their snapshot of scheduling state."""

from __future__ import annotations

from typing import Protocol

from swarmbalancer.model import Priority, Task


class QueueView(Protocol):
    """An agent's queue as policies may read it: per level, tasks in dispatch order."""

    def __len__(self) -> int: ...

    def level_len(self, level: Priority) -> int: ...

    def level_tasks(self, level: Priority) -> list[Task]: ...

    @property
    def saturated(self) -> bool:
        """Were all four weighted levels non-empty when the last task was taken?"""
        ...
