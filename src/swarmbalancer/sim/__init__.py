"""Deterministic discrete-event simulation: the coordinator driven in virtual time."""

from swarmbalancer.sim.driver import Attempt, SimDriver
from swarmbalancer.sim.engine import EventLoop
from swarmbalancer.sim.timeline import LogHistogram, Timeline

__all__ = ["Attempt", "EventLoop", "LogHistogram", "SimDriver", "Timeline"]
