"""The test session's guard for the compiled hot path (scripts/native.py).

A run refuses compiled modules older than their sources (they would test old code); `--pure`
imports the Python sources even where compiled modules exist, to test the fallback that runs
where no C compiler is.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _build_script() -> ModuleType:
    """scripts/native.py, loaded by path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_native_build", ROOT / "scripts" / "native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _SourcesFirst:
    """A meta path finder that gives swarmbalancer's modules from their `.py` files."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not name.startswith("swarmbalancer.") or path is None:
            return None
        leaf = name.rpartition(".")[2]
        for entry in path:
            source = Path(entry) / f"{leaf}.py"
            if source.is_file():
                return importlib.util.spec_from_file_location(name, source)
        return None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pure",
        action="store_true",
        help="import swarmbalancer's Python sources even where compiled modules exist",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--pure"):
        sys.meta_path.insert(0, _SourcesFirst())
        return
    stale = _build_script().stale()
    if stale:
        pytest.exit(
            f"compiled modules stale or no longer listed: {', '.join(stale)}; "
            "run `make native` (or `uv run python scripts/native.py --clean` to test the sources)",
            returncode=4,
        )
