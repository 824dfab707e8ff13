"""Bearer tokens with roles: who may call what, and an agent token only for its own agent.

A token file is JSON: `{"TOKEN": {"role": "admin"}, "TOKEN2": {"role": "agent", "agent": "a1"}}`.
Tokens are kept only as SHA-256 digests, so looking one up takes the same time whatever it is.
With no tokens at all (a loopback-only service) every caller is an admin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from swarmbalancer.documents import DocumentError, loads_json, read_text
from swarmbalancer.errors import ConfigError

#: A token shorter than this is refused: it could be guessed.
MIN_TOKEN_LENGTH = 16


class Role(StrEnum):
    """What a token may do: `read` reads, `submit` also submits and cancels, `agent` serves as
    one agent, `admin` does everything (agents of any id, configuration)."""

    ADMIN = "admin"
    SUBMIT = "submit"
    AGENT = "agent"
    READ = "read"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a token stands for; `agent` is the one agent an agent token may act as."""

    role: Role
    agent: str | None = None

    def may_act_as(self, agent_id: str) -> bool:
        return self.role is Role.ADMIN or (self.role is Role.AGENT and self.agent == agent_id)


#: The caller when the service has no tokens (it then listens on loopback only).
ANYONE = Principal(Role.ADMIN)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenTable:
    """The service's tokens, by digest."""

    def __init__(self, entries: dict[str, Principal] | None = None) -> None:
        self._by_digest = {_digest(t): p for t, p in (entries or {}).items()}

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    def lookup(self, token: str) -> Principal | None:
        return self._by_digest.get(_digest(token))

    @classmethod
    def from_json(cls, data: Any, where: str = "tokens") -> TokenTable:
        """Build the table from a token file's JSON, naming the entry that is wrong."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object of token -> {{role, agent?}}")
        entries: dict[str, Principal] = {}
        for index, (token, spec) in enumerate(data.items()):
            at = f"{where}: entry {index + 1}"
            if len(token) < MIN_TOKEN_LENGTH:
                raise ConfigError(f"{at}: token shorter than {MIN_TOKEN_LENGTH} characters")
            if not isinstance(spec, dict) or set(spec) - {"role", "agent"}:
                raise ConfigError(f"{at}: expected {{role, agent?}}")
            try:
                role = Role(str(spec.get("role")))
            except ValueError:
                roles = ", ".join(r.value for r in Role)
                raise ConfigError(f"{at}.role: must be one of {roles}") from None
            agent = spec.get("agent")
            if role is Role.AGENT and not (isinstance(agent, str) and agent):
                raise ConfigError(f"{at}.agent: an agent token names its agent id")
            if role is not Role.AGENT and agent is not None:
                raise ConfigError(f"{at}.agent: only an agent token names an agent")
            entries[token] = Principal(role, agent)
        return cls(entries)

    @classmethod
    def from_file(cls, path: Path) -> TokenTable:
        try:
            data = loads_json(read_text(path))
        except (DocumentError, OSError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return cls.from_json(data, str(path))
