"""Work-size distributions of generated tasks, discriminated by `dist`.

Work is measured in seconds at speed 1: an agent of speed `s` needs `work / s` seconds. Each model
samples from a `random.Random` and states its analytical mean (`expected()`), which tests and docs
rely on.
"""

from __future__ import annotations

import math
import random
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from swarmbalancer.workload.limits import MAX_FACTOR, MAX_SECONDS, MAX_SIGMA


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ConstantWork(_Dist):
    """Every task has the same work `value`."""

    dist: Literal["constant"]
    value: float = Field(ge=0, le=MAX_SECONDS)

    def sample(self, rng: random.Random) -> float:
        return self.value

    def expected(self) -> float:
        return self.value


class ExponentialWork(_Dist):
    """Exponentially distributed work with the given `mean`."""

    dist: Literal["exponential"]
    mean: float = Field(gt=0, le=MAX_SECONDS)

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean)

    def expected(self) -> float:
        return self.mean


class ParetoWork(_Dist):
    """Heavy-tailed Pareto work of shape `alpha` > 1 and uncapped mean `mean`, capped at `max`.

    The scale is `xm = mean * (alpha - 1) / alpha`. The cap replaces every larger sample by `max`,
    which lowers the realised mean below `mean`; `expected()` returns the capped value.
    """

    dist: Literal["pareto"]
    alpha: float = Field(gt=1, le=MAX_FACTOR)
    mean: float = Field(gt=0, le=MAX_SECONDS)
    max: float | None = Field(default=None, gt=0, le=MAX_SECONDS)

    @property
    def scale(self) -> float:
        """The minimum work `xm`, chosen so that the uncapped mean is `mean`."""
        return self.mean * (self.alpha - 1.0) / self.alpha

    @field_validator("max")
    @classmethod
    def _cap_above_scale(cls, value: float | None, info: ValidationInfo) -> float | None:
        alpha, mean = info.data.get("alpha"), info.data.get("mean")
        if value is None or alpha is None or mean is None:
            return value
        scale = mean * (alpha - 1.0) / alpha
        if value <= scale:
            raise ValueError(
                f"must be > the scale xm = mean*(alpha-1)/alpha = {scale:.6g}, got {value}"
            )
        return value

    def sample(self, rng: random.Random) -> float:
        value = self.scale * rng.paretovariate(self.alpha)
        return value if self.max is None else min(value, self.max)

    def expected(self) -> float:
        """E[min(X, max)] = mean - xm^alpha * max^(1-alpha) / (alpha-1); `mean` when uncapped.

        Computed as xm * (xm/max)^(alpha-1), which cannot overflow since xm < max.
        """
        if self.max is None:
            return self.mean
        a, xm = self.alpha, self.scale
        return self.mean - xm * float((xm / self.max) ** (a - 1.0)) / (a - 1.0)


class LognormalWork(_Dist):
    """Log-normal work with the given `mean` and log-space spread `sigma`.

    The log-space location is `mu = ln(mean) - sigma^2 / 2`, so the mean is `mean` for any sigma.
    """

    dist: Literal["lognormal"]
    mean: float = Field(gt=0, le=MAX_SECONDS)
    sigma: float = Field(ge=0, le=MAX_SIGMA)

    def sample(self, rng: random.Random) -> float:
        mu = math.log(self.mean) - self.sigma**2 / 2.0
        return rng.lognormvariate(mu, self.sigma)

    def expected(self) -> float:
        return self.mean


class BimodalWork(_Dist):
    """A mix of two exponential modes: mean `long` with probability `p_long`, else mean `short`."""

    dist: Literal["bimodal"]
    short: float = Field(gt=0, le=MAX_SECONDS)
    long: float = Field(gt=0, le=MAX_SECONDS)
    p_long: float = Field(ge=0, le=1)

    def sample(self, rng: random.Random) -> float:
        # Draw the mode first, then the size, so both use a fixed number of draws per task.
        mode_long = rng.random() < self.p_long
        return rng.expovariate(1.0 / (self.long if mode_long else self.short))

    def expected(self) -> float:
        return (1.0 - self.p_long) * self.short + self.p_long * self.long


WorkDist = Annotated[
    ConstantWork | ExponentialWork | ParetoWork | LognormalWork | BimodalWork,
    Field(discriminator="dist"),
]
