"""Exchange's own health tests: Test-ReplicationHealth and Test-ServiceHealth."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.sources.replication_health import ReplicationCheck
from dagcheck.sources.service_health import ServiceHealth


@check(
    "DAG-REPL-001",
    "Every Test-ReplicationHealth check passes",
    severity="critical",
    rationale="Test-ReplicationHealth is Microsoft's own verdict on cluster, replication and database "
    "redundancy health of a DAG member; the result is read through its localized text.",
    remediation="Test-ReplicationHealth -Identity {server} | Where-Object Result -ne Passed | Format-List",
    phases=("health", "preflight", "postflight"),
    source="replication",
)
def test_replication_check_passes(item: ReplicationCheck) -> None:
    require(
        item.result == "Passed",
        f"{item.check} on {item.server} is {item.result}" + (f": {item.error}" if item.error else ""),
        expected="Passed",
        actual=item.result,
    )


@check(
    "DAG-SVC-001",
    "All services required by each role are running",
    severity="critical",
    rationale="Test-ServiceHealth lists, per server role, the Windows services Exchange needs; a stopped "
    "one takes that role down on the server.",
    remediation="Start-Service <service> on {server} (services not running are named in the failure)",
    phases=("health", "preflight", "postflight"),
    source="services",
)
def test_required_services_running(item: ServiceHealth) -> None:
    require(
        item.required_services_running and not item.services_not_running,
        f"{item.role} on {item.server}: services not running: {', '.join(item.services_not_running) or 'unknown'}",
        expected="all required services running",
        actual=f"not running: {', '.join(item.services_not_running)}",
        remediation=" ; ".join(
            f"Invoke-Command -ComputerName {item.server} {{ Start-Service {s} }}" for s in item.services_not_running
        )
        or None,
    )
