"""A swarm across machines on Redis: the key layout, the Lua scripts that make each transition
atomic, the elected coordinator process, remote agents and the client (docs/distributed.md)."""
