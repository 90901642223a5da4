"""Facts about Exchange that both the checks and the lab rely on, each with where it comes from."""

from __future__ import annotations

# Test-ServiceHealth's roles and their required services (fixture TestServiceHealth.xml, E19).
ROLE_SERVICES = {
    "Mailbox Server Role": (
        "IISAdmin",
        "MSExchangeADTopology",
        "MSExchangeDelivery",
        "MSExchangeIS",
        "MSExchangeMailboxAssistants",
        "MSExchangeRepl",
        "MSExchangeRPC",
        "MSExchangeServiceHost",
        "MSExchangeSubmission",
        "MSExchangeThrottling",
        "MSExchangeTransportLogSearch",
        "W3Svc",
        "WinRM",
    ),
    "Client Access Server Role": (
        "IISAdmin",
        "MSExchangeADTopology",
        "MSExchangeMailboxReplication",
        "MSExchangeRPC",
        "MSExchangeServiceHost",
        "W3Svc",
        "WinRM",
    ),
    "Hub Transport Server Role": (
        "IISAdmin",
        "MSExchangeADTopology",
        "MSExchangeEdgeSync",
        "MSExchangeServiceHost",
        "MSExchangeTransport",
        "MSExchangeTransportLogSearch",
        "W3Svc",
        "WinRM",
    ),
}

# Services the host checks expect RUNNING: every role's required service, and the cluster service
# every DAG member needs.
REQUIRED_SERVICES = tuple(sorted({svc for services in ROLE_SERVICES.values() for svc in services} | {"ClusSvc"}))
