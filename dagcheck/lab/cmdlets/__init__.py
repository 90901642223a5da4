"""The lab's cmdlets, one module per Exchange area; importing this package registers all of them.

The WSMan server and the in-process transport call `run_pipeline`; nothing else reaches the registry.
"""

from dagcheck.lab.cmdlets import (  # noqa: F401  (each module registers its cmdlets on import)
    client_access,
    cluster,
    components,
    connectors,
    dag,
    databases,
    health,
    host,
    monitoring,
    servers,
    session,
    transport,
)
from dagcheck.lab.cmdlets.base import REGISTRY, run_pipeline, slow_seconds

__all__ = ["REGISTRY", "run_pipeline", "slow_seconds"]
