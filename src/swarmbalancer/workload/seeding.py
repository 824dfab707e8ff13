"""Named random streams derived from one workload seed.

Each aspect of a workload (work sizes, arrivals, priorities, one attempt's failure draw...) gets its
own `random.Random`, so changing one aspect of a file never reshuffles the others, and a draw never
depends on the order in which other draws were made.
"""

from __future__ import annotations

import random


def derived_rng(seed: int, *parts: object) -> random.Random:
    """A generator seeded from `seed` and `parts`: the same arguments give the same stream.

    String seeds are hashed with SHA-512 by `random.seed`, so the stream is stable across runs and
    independent of `PYTHONHASHSEED`.
    """
    return random.Random("/".join(["swarmbalancer", str(seed), *map(str, parts)]))
