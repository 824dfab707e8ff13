"""How a workload's tenants reach the balancer configuration."""

from __future__ import annotations

from swarmbalancer.config import BalancerConfig
from swarmbalancer.workload.schema import Workload


def with_tenants(config: BalancerConfig, workload: Workload) -> BalancerConfig:
    """The workload's tenant weights, unless the configuration already names some."""
    if workload.tenants and not config.tenant_weights:
        return config.updated({"tenantWeights": workload.tenant_weights()})
    return config
