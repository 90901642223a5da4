"""Databases: none mounted on a server in maintenance; afterwards each back on its preferred server."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.sources.database_copies import DatabaseCopyStatus
from dagcheck.sources.mailbox_databases import MailboxDatabase
from dagcheck.sources.mapi_connectivity import MapiResult


@check(
    "DAG-DB-001",
    "No database copy is mounted on the server in maintenance",
    severity="critical",
    rationale="A server in maintenance is about to be patched or restarted; a database still mounted there "
    "goes down with it. DatabaseCopyActivationDisabledAndMoveNow moves them, Move-ActiveMailboxDatabase by hand.",
    remediation="Move-ActiveMailboxDatabase -Server {server}  (or -Identity <db> -ActivateOnServer <member>)",
    phases=("maintenance",),
    source="copies",
)
def test_no_copy_mounted_in_maintenance(item: DatabaseCopyStatus) -> None:
    require(
        item.status not in ("Mounted", "Mounting"),
        f"{item.database} is still {item.status.lower()} on {item.server}",
        expected="no mounted copies while in maintenance",
        actual=item.status,
    )


def _judged_here(db: MailboxDatabase) -> bool:
    """Each database is listed by every server with a copy; judge it once, from its preferred server."""
    return db.preferred_server is not None and db.preferred_server == db.seen_from


@check(
    "DAG-DB-002",
    "Every database is active on its activation-preference-1 server",
    severity="warning",
    rationale="After maintenance the load is balanced again only once each database is back on the server "
    "its ActivationPreference puts first (RedistributeActiveDatabases.ps1 -BalanceDbsByActivationPreference).",
    remediation="Move-ActiveMailboxDatabase -Identity {key} -ActivateOnServer {server}",
    phases=("health", "postflight"),
    source="databases",
    select=_judged_here,
)
def test_database_on_preferred_server(item: MailboxDatabase) -> None:
    require(
        item.mounted_on == item.preferred_server,
        f"{item.name} is active on {item.mounted_on}, its preference-1 server is {item.preferred_server}",
        expected=str(item.preferred_server),
        actual=item.mounted_on,
    )


@check(
    "DAG-DB-003",
    "Every database is mounted",
    severity="critical",
    rationale="A dismounted database means its mailboxes are unavailable; Mounted is only populated by "
    "Get-MailboxDatabase -Status.",
    remediation="Mount-Database -Identity {key}; if it fails, read the Application log on the active server",
    phases=("health", "postflight"),
    source="databases",
    select=_judged_here,
)
def test_database_is_mounted(item: MailboxDatabase) -> None:
    require(
        item.mounted is True,
        f"{item.name} is not mounted (active copy on {item.mounted_on})",
        expected="Mounted",
        actual="dismounted" if item.mounted is False else "unknown",
    )


@check(
    "DAG-DB-004",
    "Test-MAPIConnectivity succeeds for every active database",
    severity="critical",
    rationale="Logging on to each database's system mailbox proves that the store serves clients, which "
    "mount state alone does not.",
    remediation="Test-MAPIConnectivity -Database <database> | fl ; check MSExchangeIS on {server}",
    phases=("health", "postflight"),
    source="mapi",
)
def test_mapi_connectivity(item: MapiResult) -> None:
    require(
        item.result == "Success",
        f"MAPI logon to {item.database} on {item.server} gave {item.result}" + (f": {item.error}" if item.error else ""),
        expected="Success",
        actual=item.result,
    )
