"""Whether this process runs the hot path compiled (scripts/native.py builds it with mypyc) or
as Python sources, so that every figure can say which it measured."""

from __future__ import annotations

import importlib

#: The modules scripts/native.py compiles; each is an extension module once built.
HOT_PATH: tuple[str, ...] = (
    "model",
    "swarm",
    "routing",
    "lifecycle",
    "binding",
    "coordinator",
    "store.memory",
    "store.journal",
    "policies.levels",
    "policies.adaptive",
    "metrics.stats",
    "metrics.recorder",
    "runtime.state",
    "runtime.registry",
    "runtime.durability",
    "runtime.submission",
    "runtime.worker",
    "runtime.pump",
    "cluster.rows",
)


def compiled() -> bool:
    """True when every module of the hot path was imported from a compiled extension."""
    for name in HOT_PATH:
        path = getattr(importlib.import_module(f"swarmbalancer.{name}"), "__file__", None) or ""
        if path.endswith(".py"):
            return False
    return True


def build_label() -> str:
    """`compiled (mypyc)` or `pure Python`: what a benchmark's header says it measured."""
    return "compiled (mypyc)" if compiled() else "pure Python"
