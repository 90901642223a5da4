"""How Exchange's services start: a Disabled one is an outage waiting for the next restart."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.facts import REQUIRED_SERVICES
from dagcheck.sources.services import ServiceStart

_REQUIRED = frozenset(s.lower() for s in REQUIRED_SERVICES)


@check(
    "DAG-SVC-002",
    "Exchange services start Automatic, none is Disabled",
    severity="critical",
    rationale="Exchange setup stops its services and sets them Disabled while it runs; an update that fails or "
    "is interrupted leaves them Disabled, so the server runs until its next restart and then does not come back "
    "(Learn, 'Fix failed Exchange Server updates'). The services each role requires (Test-ServiceHealth's list) "
    "and the cluster service start Automatic; no other Exchange service is Disabled (POP3 and IMAP4 are Manual "
    "by default, which is fine).",
    remediation="Set-Service -Name <service> -StartupType Automatic on {server}, or run ServiceControl.ps1 "
    "AfterPatch from the Exchange bin folder (Learn, 'Fix failed Exchange Server updates')",
    phases=("health", "preflight", "postflight"),
    source="service_start",
    select=lambda s: s.is_exchange or s.name.lower() in _REQUIRED,
)
def test_exchange_service_not_disabled(item: ServiceStart) -> None:
    required = item.name.lower() in _REQUIRED
    expected = "Automatic" if required else "Automatic or Manual (not Disabled)"
    ok = item.start_type == "Automatic" if required else item.start_type != "Disabled"
    # POP3 and IMAP4 (front end and back end) are installed Manual; every other Exchange service Automatic.
    wanted = "Manual" if not required and any(p in item.name.lower() for p in ("pop3", "imap4")) else "Automatic"
    require(
        ok,
        f"service {item.name} on {item.server} starts {item.start_type} (now {item.status})",
        expected=expected,
        actual=item.start_type,
        remediation=f"Invoke-Command -ComputerName {item.server} {{ Set-Service -Name {item.name} -StartupType {wanted} }}",
    )
