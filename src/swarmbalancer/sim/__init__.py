"""Deterministic discrete-event simulation: the coordinator driven in virtual time."""

from swarmbalancer.sim.driver import Attempt, SimDriver
from swarmbalancer.sim.engine import EventLoop

__all__ = ["Attempt", "EventLoop", "SimDriver"]
