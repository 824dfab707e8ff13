"""`swarmbalancer coordinator`: bad options are one error line naming what is wrong (exit 2);
the process itself is tested in tests/cluster/."""

from __future__ import annotations

import pytest

from clihelpers import invoke, one_line_error
from redisserver import free_port

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--store", "memory"], "store"),
        (["--store", "redis://h/0", "--swarm-id", "two words"], "swarm_id"),
        (["--store", "redis://h/0?lease_ttl=0"], "lease_ttl"),
        (["--store", "redis://h/0", "--config", '{"stealThreshold": -1}'], "stealThreshold"),
    ],
)
def test_bad_options_are_one_error_line_naming_them(args: list[str], named: str) -> None:
    assert named in one_line_error(invoke("coordinator", *args))


def test_an_unreachable_server_is_one_error_line() -> None:
    line = one_line_error(invoke("coordinator", "--store", f"redis://127.0.0.1:{free_port()}/0"))
    assert "store" in line
