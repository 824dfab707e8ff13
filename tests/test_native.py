"""Which build of the hot path this run tests: compiled, or the Python sources under --pure."""

from __future__ import annotations

import pytest

import swarmbalancer
from swarmbalancer import coordinator, model
from swarmbalancer.native import compiled


@pytest.mark.timeout(10)
def test_compiled_says_whether_the_hot_path_modules_are_extensions(
    request: pytest.FixtureRequest,
) -> None:
    files = [coordinator.__file__ or "", model.__file__ or ""]
    if request.config.getoption("--pure"):
        assert all(f.endswith(".py") for f in files) and not compiled()
    else:
        assert compiled() == all(not f.endswith(".py") for f in files)
    assert swarmbalancer.compiled is compiled
