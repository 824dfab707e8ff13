"""Measurement: the recorder that turns a run's events into a report, and the statistics it uses."""

from swarmbalancer.metrics.bound import MakespanBound
from swarmbalancer.metrics.stats import (
    LatencySummary,
    QuantileSketch,
    jain_index,
    percentile,
    variance,
)

__all__ = [
    "LatencySummary",
    "MakespanBound",
    "QuantileSketch",
    "jain_index",
    "percentile",
    "variance",
]
