"""The public names: everything in `__all__` imports, and nothing else is advertised."""

from __future__ import annotations

import swarmbalancer


def test_every_exported_name_resolves() -> None:
    for name in swarmbalancer.__all__:
        assert getattr(swarmbalancer, name) is not None, name


def test_all_lists_exactly_the_lazy_exports() -> None:
    assert set(swarmbalancer.__all__) == {*swarmbalancer._WHERE, "__version__"}
    assert swarmbalancer.__all__ == sorted(swarmbalancer.__all__)
