"""Managed Availability: Exchange's own probes of each protocol, read per monitor with its health set."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.sources.health import MonitorHealth

# Only Unhealthy fails: Degraded is the short stage before a monitor's responders act, Repairing means an
# administrator has acknowledged it (Set-ServerMonitor -Repairing $true), and Disabled monitors are
# switched off on purpose (Learn, Get-ServerHealth and Set-ServerMonitor).
FAILING = ("Unhealthy",)


@check(
    "DAG-MA-001",
    "No Managed Availability health set is Unhealthy",
    severity="critical",
    rationale="Managed Availability probes every protocol of the server from inside (OwaSelfTestProbe, "
    "EwsSelfTestProbe ... against the back end) and the health set takes the worst state of its monitors; "
    "an Unhealthy health set is a protocol that fails for users even when every service runs, the failure mode "
    "Microsoft lists first after a failed update (Learn: 'Manage health sets and server health in Exchange "
    "Server', Get-ServerHealth; 'Fix failed Exchange Server updates'). The load balancer's healthcheck.htm "
    "pages answer from the same health. A monitor known to be wrong for this site is switched off the way "
    "Managed Availability provides, Add-ServerMonitoringOverride (it then reads Disabled and does not fail here).",
    remediation="Get-ServerHealth -Identity {server} | Where-Object AlertValue -eq Unhealthy | "
    "Format-Table HealthSetName,Name,TargetResource,LastTransitionTime; list the health set's probes with "
    "Get-MonitoringItemIdentity and run the failing one with Invoke-MonitoringProbe (Learn: the health set's "
    "troubleshooting page)",
    phases=("health", "preflight", "postflight"),
    source="server_health",
    per_server=True,
)
def test_no_health_set_is_unhealthy(item: tuple[MonitorHealth, ...]) -> None:
    bad = [m for m in item if m.alert_value in FAILING]
    server = bad[0].server if bad else ""
    require(
        not bad,
        f"{server}: " + "; ".join(m.describe() for m in bad),
        expected="no monitor Unhealthy",
        actual=", ".join(f"{m.health_set}\\{m.monitor}" for m in bad),
        remediation=" ; ".join(
            sorted(
                {
                    f"Get-MonitoringItemIdentity -Identity {m.health_set} -Server {m.server} | "
                    "Format-Table Identity,ItemType,Name"
                    for m in bad
                }
            )
        )
        or None,
    )
