"""The monitoring cmdlets: Test-ReplicationHealth, Test-ServiceHealth, Test-MAPIConnectivity."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dagcheck.lab import products
from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import (
    Call,
    cmdlet,
    lookup_db,
    lookup_server,
)
from dagcheck.lab.objects import LabServer
from dagcheck.lab.state import Organization

REPLICATION_CHECKS = (
    "ClusterService",
    "ReplayService",
    "ActiveManager",
    "TasksRpcListener",
    "TcpListener",
    "ServerLocatorService",
    "DagMembersUp",
    "ClusterNetwork",
    "QuorumGroup",
    "FileShareQuorum",
    "DatabaseRedundancy",
    "DatabaseAvailability",
    "DBCopySuspended",
    "DBCopyFailed",
    "DBInitializing",
    "DBDisconnected",
    "DBLogCopyKeepingUp",
    "DBLogReplayKeepingUp",
)
CHECK_DESCRIPTIONS = {c: f"Checks {c}" for c in REPLICATION_CHECKS}
CHECK_DESCRIPTIONS.update(
    {
        "ClusterService": "Checks if the cluster service is healthy.",
        "ReplayService": "Checks if the Microsoft Exchange Replication service is running.",
        "DagMembersUp": "Verifies that the members of a database availability group are up and running.",
        "QuorumGroup": "Checks that the quorum and witness for the database availability group is healthy.",
        "FileShareQuorum": "Verifies that the path used for the file share witness can be reached.",
        "DatabaseRedundancy": "Checks whether there are enough configured and healthy database copies.",
        "DBCopySuspended": "Checks whether any mailbox database copies are in a state of Suspended.",
        "DBCopyFailed": "Checks whether any mailbox database copies are in a state of Failed.",
        "DBLogCopyKeepingUp": "Verifies that log copying and inspection by the passive copies are able to keep up "
        "with log generation activity on the active copy.",
        "DBLogReplayKeepingUp": "Verifies that replay activity for the passive copies is able to keep up with log "
        "copying and inspection activity.",
    }
)


def _replication_outcomes(org: Organization, s: LabServer) -> dict[str, str]:
    copies = [(db, here) for db in org.databases_with_copy_on(s.name) if (here := db.copy_on(s.name)) is not None]
    dag = org.dag_of(s)
    repl = s.services.get("MSExchangeRepl") == "Running"
    res = {c: "Passed" for c in REPLICATION_CHECKS}
    if s.services.get("ClusSvc") != "Running" or s.cluster_state == "Down":
        res["ClusterService"] = "Failed"
    if not repl:
        for c in ("ReplayService", "ActiveManager", "TasksRpcListener", "TcpListener", "ServerLocatorService"):
            res[c] = "Failed"
    if dag is not None:
        if any(org.server(m).cluster_state == "Down" for m in dag.members):
            res["DagMembersUp"] = "Failed"
        present, total, witness = org.quorum(dag.name)
        if present * 2 <= total:
            res["QuorumGroup"] = "Failed"
        if witness and not dag.witness_available:
            res["FileShareQuorum"] = "Failed"
    for db, copy in copies:
        others = [
            c
            for c in db.copies
            if c is not copy and c.status in ("Healthy", "Mounted", "DisconnectedAndHealthy") and c.lag is None
        ]
        if db.active_server.lower() == s.name.lower() and not others:
            res["DatabaseRedundancy"] = "Failed"
        if copy.status in ("Suspended", "FailedAndSuspended"):
            res["DBCopySuspended"] = "Failed"
        if copy.status in ("Failed", "FailedAndSuspended"):
            res["DBCopyFailed"] = "Failed"
        if copy.status == "Initializing":
            res["DBInitializing"] = "Failed"
        if copy.status.startswith("Disconnected"):
            res["DBDisconnected"] = "Failed"
        if copy.copy_queue > 10:
            res["DBLogCopyKeepingUp"] = "Failed"
        if copy.lag is None and copy.replay_queue > 100:
            res["DBLogReplayKeepingUp"] = "Failed"
    for check in s.failing_replication_checks:
        res[check] = "Failed"
    return res


@cmdlet(
    "Test-ReplicationHealth",
    "Identity",
    "ActiveDirectoryTimeout",
    "MonitoringContext",
    "OutputObjects",
    "TransientEventSuppressionWindow",
)
def test_replication_health(call: Call) -> list[Any]:
    s = lookup_server(call, call.get("Identity")) if call.get("Identity") else call.server
    out = []
    for check, result in _replication_outcomes(call.org, s).items():
        out.append(
            ps.obj(
                ["Microsoft.Exchange.Monitoring.ReplicationCheckOutcome", *ps.CONFIGURABLE],
                {
                    "Server": s.name.upper(),
                    "Check": check,
                    "CheckDescription": CHECK_DESCRIPTIONS[check],
                    # The monitoring result loses .Value over remote PS: only its (localized) ToString arrives.
                    "Result": {"Passed": "Passed", "Failed": "*FAILED*", "Warning": "*WARNING*"}[result],
                    "Error": None if result == "Passed" else f"{check} failed on {s.name.upper()} (lab state).",
                    "Identity": None,
                    "IsValid": True,
                    "ObjectState": ps.enum("Microsoft.Exchange.Data.ObjectState", "New"),
                },
            )
        )
    return out


@cmdlet("Test-ServiceHealth", "Server", "ActiveDirectoryTimeout", "MonitoringContext")
def test_service_health(call: Call) -> list[Any]:
    s = lookup_server(call, call.get("Server")) if call.get("Server") else call.server
    out = []
    for role, services in products.role_services(s.product).items():
        running = [x for x in services if s.services.get(x) == "Running"]
        stopped = [x for x in services if s.services.get(x) != "Running"]
        out.append(
            ps.obj(
                ["Microsoft.Exchange.Monitoring.ExchangeServicesStatus", *ps.CONFIGURABLE],
                {
                    "Role": role,
                    "RequiredServicesRunning": not stopped,
                    "ServicesNotRunning": ps.mvp(stopped),
                    "ServicesRunning": ps.mvp(running),
                    "Identity": None,
                    "IsValid": True,
                    "ObjectState": ps.enum("Microsoft.Exchange.Data.ObjectState", "New"),
                },
            )
        )
    return out


@cmdlet(
    "Test-MAPIConnectivity",
    "Database",
    "Server",
    "Identity",
    "PerConnectionTimeout",
    "ActiveDirectoryTimeout",
    "MonitoringContext",
    "AllConnectionsTimeout",
)
def test_mapi_connectivity(call: Call) -> list[Any]:
    org = call.org
    if call.get("Database"):
        dbs = [lookup_db(call, call.get("Database"))]
    else:
        s = lookup_server(call, call.get("Server")) if call.get("Server") else call.server
        dbs = [d for d in org.databases.values() if d.active_server.lower() == s.name.lower()]
    out = []
    for db in dbs:
        host = org.server(db.active_server)
        copy = db.copy_on(db.active_server)
        ok = copy is not None and copy.status == "Mounted" and host.services.get("MSExchangeIS") == "Running"
        out.append(
            ps.obj(
                [
                    "Microsoft.Exchange.Monitoring.MapiTransactionOutcome",
                    "Microsoft.Exchange.Monitoring.TransactionOutcomeBase",
                    *ps.CONFIGURABLE,
                ],
                {
                    "Server": host.name.upper(),
                    "Database": db.name,
                    "Mailbox": f"SystemMailbox{{{db.guid}}}",
                    "MailboxGuid": db.guid,
                    "IsArchive": False,
                    "IsDatabaseCopyActive": True,
                    "Latency": dt.timedelta(milliseconds=12) if ok else None,
                    "Error": None
                    if ok
                    else f"[Microsoft.Exchange.Data.Storage.ConnectionFailedPermanentException]: Database {db.name} is offline.",
                    "Result": "Success" if ok else "*FAILURE*",
                    "Identity": None,
                    "IsValid": True,
                },
            )
        )
    return out
