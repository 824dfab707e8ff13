"""`swarmbalancer serve`: one embedded Balancer behind an authenticated HTTP API (FastAPI).

`create_app(settings)` builds the ASGI app; `Service` is what it hosts (the balancer, the HTTP
agents' leases, the tasks' handles and the Prometheus metrics).
"""

from __future__ import annotations

from swarmbalancer.service.app import create_app
from swarmbalancer.service.core import Service
from swarmbalancer.service.settings import ServeSettings

__all__ = ["ServeSettings", "Service", "create_app"]
