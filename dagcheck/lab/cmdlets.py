"""One function per cmdlet, with the real cmdlet's parameter names, answering from the lab's state.

Every result is derived from the state (never canned) and built with the shapes in psobjects.py.
Endpoints: "exchange" is a server's /PowerShell (Microsoft.Exchange configuration), "windows" is
its /wsman default configuration (FailoverClusters, services, files).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagcheck.facts import ROLE_SERVICES
from dagcheck.lab import faults
from dagcheck.lab import psobjects as ps
from dagcheck.lab.errors import (
    LabCmdletError,
    command_not_found,
    invalid_value,
    missing_parameter,
    object_not_found,
    parameter_not_found,
)
from dagcheck.lab.state import (
    COMPONENTS,
    REQUESTERS,
    SERVICE_DISPLAY_NAMES,
    TICK_SECONDS,
    VDIRS,
    LabCopy,
    LabDatabase,
    LabServer,
    Organization,
)

COMMON = {"ErrorAction", "WarningAction", "Verbose", "Debug", "Confirm", "WhatIf", "DomainController"}
EXCHANGE, WINDOWS = "exchange", "windows"
MGMT = "Microsoft.Exchange.Data.Directory.Management"
SYSCONF = "Microsoft.Exchange.Data.Directory.SystemConfiguration"
TASKS = "Microsoft.Exchange.Management.SystemConfigurationTasks"


@dataclass(frozen=True)
class Call:
    """What a cmdlet function receives: the organisation, the server whose endpoint ran it, the parameters."""

    org: Organization
    server: LabServer
    cmdlet: str
    params: dict[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def switch(self, name: str) -> bool:
        # pypsrp sends a switch either as True or with a Nil value.
        return name in self.params and self.params[name] is not False

    def require(self, name: str) -> Any:
        if name not in self.params or self.params[name] in (None, ""):
            raise missing_parameter(self.cmdlet, name)
        return self.params[name]


@dataclass(frozen=True)
class Cmdlet:
    name: str
    endpoint: str
    parameters: frozenset[str]
    fn: Callable[[Call], list[Any]]
    changes_state: bool = False


REGISTRY: dict[str, Cmdlet] = {}


def cmdlet(name: str, *parameters: str, endpoint: str = EXCHANGE, changes_state: bool = False):
    def register(fn: Callable[[Call], list[Any]]) -> Callable[[Call], list[Any]]:
        REGISTRY[name.lower()] = Cmdlet(name, endpoint, frozenset(parameters), fn, changes_state)
        return fn

    return register


def invoke(org: Organization, endpoint: str, server_name: str, name: str, params: dict[str, Any]) -> list[Any]:
    """Run one cmdlet as the server's endpoint would; raise LabCmdletError for what PowerShell rejects."""
    spec = REGISTRY.get(name.lower())
    if spec is None or spec.endpoint != endpoint or faults.matching(org, "cmdlet_missing", server_name, name):
        # cmdlet_missing: e.g. an older build, or a role group that does not grant the cmdlet.
        raise command_not_found(name)
    canonical = {p.lower(): p for p in spec.parameters | COMMON}
    bound: dict[str, Any] = {}
    for key, value in params.items():
        if key.lower() not in canonical:
            raise parameter_not_found(spec.name, key)
        bound[canonical[key.lower()]] = value
    with org.lock:
        org.tick(TICK_SECONDS)
        org.call_log.append((server_name, spec.name, dict(bound)))
        for f in faults.matching(org, "cmdlet_error", server_name, spec.name):
            raise LabCmdletError(
                f.get("value") or "The Microsoft Exchange Replication service may not be running on server "
                f"{server_name}. Specific RPC error message: Error 0x6ba (The RPC server is unavailable).",
                "NotSpecified",
                f"[Server={server_name.upper()}] {spec.name.replace('-', '')}Exception,{spec.name}",
                "Microsoft.Exchange.Cluster.Replay.ReplayServiceDownException",
                activity=spec.name,
            )
        for f in faults.matching(org, "throttled", server_name, spec.name):
            # The first `count` calls exceed the PowerShell budget (message shape guessed from the
            # OverBudgetException text administrators report).
            hits = org.fault_hits.get(id(f), 0)
            if hits < f.get("count", 1):
                org.fault_hits[id(f)] = hits + 1
                raise LabCmdletError(
                    f"The user \"{org.admin_account}\" has exceeded the budget for PowerShell cmdlets "
                    "(policy part: PowerShellMaxCmdlets). Please wait 2 seconds before trying again.",
                    "NotSpecified", f"[Server={server_name.upper()}] OverBudgetException,{spec.name}",
                    "Microsoft.Exchange.Data.Storage.OverBudgetException", activity=spec.name)
        return spec.fn(Call(org, org.server(server_name), spec.name, bound))


def run_pipeline(org: Organization, endpoint: str, server_name: str, commands: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Run a pipeline: the first command is a lab cmdlet; later ones may only be ForEach-Object -MemberName."""
    name, params = commands[0]
    output = invoke(org, endpoint, server_name, name, params)
    for name, params in commands[1:]:
        if name.lower() != "foreach-object" or endpoint != WINDOWS:
            raise command_not_found(name)
        member = params.get("MemberName")
        if not member or set(params) - {"MemberName"}:
            raise parameter_not_found("ForEach-Object", next(iter(set(params) - {"MemberName"}), "Process"))
        output = [_member(o, str(member)) for o in output]
    return output


def _member(value: Any, name: str) -> Any:
    for prop in value.PSObject.adapted_properties:
        if prop.name.lower() == name.lower():
            return prop.get_value(value)
    return None


def slow_seconds(org: Organization, server_name: str, name: str) -> float:
    """Wall-clock delay the slow_cmdlet fault asks for (the WSMan server sleeps it, outside the lock)."""
    return sum(float(f.get("seconds", 5)) for f in faults.matching(org, "slow_cmdlet", server_name, name))


# ---- shared builders ------------------------------------------------------------------------


def _server_id(s: LabServer) -> Any:
    return ps.ad_object_id(s.name.upper(), s.dn, s.guid)


def _server_ids(servers: list[LabServer]) -> Any:
    return ps.typed_list([_server_id(m) for m in servers], [
        f"{ps.EX}.Data.MultiValuedProperty`1[[{ps.EX}.Data.Directory.ADObjectId, Microsoft.Exchange.Data.Directory, "
        "Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]", "System.Object"])


def _version(v: tuple[int, int, int, int]) -> Any:
    return ps.server_version(*v)


def _lookup_server(call: Call, identity: Any) -> LabServer:
    try:
        return call.org.server(str(identity))
    except KeyError:
        raise object_not_found(call.cmdlet, "ManagementObjectNotFoundException", identity) from None


def _target_servers(call: Call, key: str = "Identity") -> list[LabServer]:
    if call.get(key) not in (None, ""):
        return [_lookup_server(call, call.get(key))]
    return list(call.org.servers.values())


def _lookup_db(call: Call, identity: Any) -> LabDatabase:
    db = call.org.databases.get(str(identity).lower())
    if db is None:
        raise object_not_found(call.cmdlet, "ManagementObjectNotFoundException", identity)
    return db


def _enum_param(call: Call, name: str, allowed: list[str]) -> str | None:
    value = call.get(name)
    if value is None:
        return None
    match = next((a for a in allowed if a.lower() == str(value).lower()), None)
    if match is None:
        raise invalid_value(call.cmdlet, name, value, allowed)
    return match


def _bool_param(call: Call, name: str) -> bool | None:
    value = call.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "$true", "1"):
        return True
    if str(value).lower() in ("false", "$false", "0"):
        return False
    raise invalid_value(call.cmdlet, name, value, ["$true", "$false"])


# ---- Get-ExchangeServer / Get-MailboxServer ---------------------------------------------------


@cmdlet("Get-ExchangeServer", "Identity", "Status")
def get_exchange_server(call: Call) -> list[Any]:
    out = []
    for s in _target_servers(call):
        site_dn = f"CN={s.site},CN=Sites,CN=Configuration,DC=contoso,DC=test"
        out.append(ps.obj(
            [f"{MGMT}.ExchangeServer", *ps.AD_PRESENTATION],
            {
                "Name": s.name.upper(),
                "Edition": ps.enum("Microsoft.Exchange.Data.ServerEditionType", "Enterprise"),
                "Fqdn": s.fqdn,
                "IsHubTransportServer": True,
                "IsClientAccessServer": True,
                "IsEdgeServer": False,
                "IsMailboxServer": True,
                "IsFrontendTransportServer": True,
                "AdminDisplayVersion": _version(s.admin_display_version),
                "Site": ps.ad_object_id(s.site, site_dn, uuid.uuid5(uuid.NAMESPACE_URL, f"dagcheck-lab:site:{s.site}"),
                                        to_string=f"contoso.test/Configuration/Sites/{s.site}"),
                "ServerRole": ps.enum(f"{SYSCONF}.ServerRole", "Mailbox"),
                "IsExchangeTrialEdition": False,
                "IsExpiredExchangeTrialEdition": False,
                "DistinguishedName": s.dn,
                "Identity": _server_id(s),
                "Guid": s.guid,
            },
            to_string=s.name.upper(),
        ))
    return out


@cmdlet("Get-MailboxServer", "Identity", "Status")
def get_mailbox_server(call: Call) -> list[Any]:
    out = []
    for s in _target_servers(call):
        dag = call.org.dag_of(s)
        out.append(ps.obj(
            [f"{MGMT}.MailboxServer", *ps.AD_PRESENTATION],
            {
                "Name": s.name.upper(),
                "DatabaseAvailabilityGroup": ps.ad_object_id(dag.name, f"CN={dag.name},CN=Database Availability Groups,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=test", s.guid) if dag else None,
                "DatabaseCopyAutoActivationPolicy": ps.enum(f"{SYSCONF}.DatabaseCopyAutoActivationPolicyType", s.activation_policy),
                "DatabaseCopyActivationDisabledAndMoveNow": s.move_now,
                "AutoDatabaseMountDial": "GoodAvailability",
                "MaximumActiveDatabases": None,
                "MaximumPreferredActiveDatabases": None,
                "AdminDisplayVersion": _version(s.admin_display_version),
                "ServerRole": ps.enum(f"{SYSCONF}.ServerRole", "Mailbox"),
                "Identity": _server_id(s),
                "DistinguishedName": s.dn,
                "Guid": s.guid,
            },
            to_string=s.name.upper(),
        ))
    return out


@cmdlet("Set-MailboxServer", "Identity", "DatabaseCopyAutoActivationPolicy",
        "DatabaseCopyActivationDisabledAndMoveNow", changes_state=True)
def set_mailbox_server(call: Call) -> list[Any]:
    s = _lookup_server(call, call.require("Identity"))
    policy = _enum_param(call, "DatabaseCopyAutoActivationPolicy", ["Unrestricted", "IntrasiteOnly", "Blocked"])
    move_now = _bool_param(call, "DatabaseCopyActivationDisabledAndMoveNow")
    if policy is not None:
        s.activation_policy = policy
    if move_now is not None:
        s.move_now = move_now
        if move_now:
            # Moves active copies off immediately, to the best healthy copy on a server that is not Blocked.
            for db in call.org.databases.values():
                if db.active_server.lower() == s.name.lower():
                    target = best_activation_target(call.org, db, exclude=s.name)
                    if target is not None:
                        switchover(call.org, db, target)
    return []


# ---- DAG --------------------------------------------------------------------------------------


def quorum(org: Organization, dag_name: str) -> tuple[int, int, bool]:
    """(votes present, total votes, witness in use) for a DAG's cluster; Paused nodes still vote."""
    dag = org.dags[dag_name.lower()]
    members = [org.server(m) for m in dag.members]
    witness = dag.witness_server is not None and len(members) % 2 == 0
    total = len(members) + (1 if witness else 0)
    present = sum(1 for m in members if m.cluster_state in ("Up", "Paused")) + (
        1 if witness and dag.witness_available else 0
    )
    return present, total, witness


@cmdlet("Get-DatabaseAvailabilityGroup", "Identity", "Status")
def get_dag(call: Call) -> list[Any]:
    dags = list(call.org.dags.values())
    if call.get("Identity"):
        dags = [d for d in dags if d.name.lower() == str(call.get("Identity")).lower()]
        if not dags:
            raise object_not_found(call.cmdlet, "ManagementObjectNotFoundException", call.get("Identity"))
    status = call.switch("Status")
    out = []
    for d in dags:
        members = [call.org.server(m) for m in d.members]
        present, total, witness = quorum(call.org, d.name)
        props: dict[str, Any] = {
            "Name": d.name,
            "Servers": _server_ids(members),
            "WitnessServer": d.witness_server,
            "WitnessDirectory": d.witness_directory,
            "AlternateWitnessServer": None,
            "AlternateWitnessDirectory": None,
            "DatacenterActivationMode": "DagOnly",
            "StartedMailboxServers": [m.fqdn for m in members],
            "StoppedMailboxServers": [],
        }
        if status:
            pam = call.org.server(d.primary_active_manager)
            in_maintenance = [m for m in members if m.own_state("ServerWideOffline") != "Active"]
            props.update({
                "OperationalServers": _server_ids([m for m in members if m.cluster_state in ("Up", "Paused")]),
                "PrimaryActiveManager": _server_id(pam),
                "ServersInMaintenance": _server_ids(in_maintenance),
                "ServersInDeferredRecovery": [],
                "ReplicationPort": 64327,
                "WitnessShareInUse": ps.enum(
                    f"{SYSCONF}.WitnessShareUsage",
                    ("Primary" if d.witness_available else "InvalidConfiguration") if witness else "None",
                ),
            })
        else:
            props.update({"OperationalServers": None, "PrimaryActiveManager": None, "ServersInMaintenance": None,
                          "WitnessShareInUse": None})
        out.append(ps.obj([f"{MGMT}.DatabaseAvailabilityGroup", *ps.AD_PRESENTATION], props, to_string=d.name))
    return out


# ---- databases and copies ---------------------------------------------------------------------


def healthy_for_activation(org: Organization, db: LabDatabase, copy: LabCopy, exclude: str | None) -> bool:
    server = org.server(copy.server)
    return (
        copy.server.lower() != (exclude or "").lower()
        and copy.status in ("Healthy", "DisconnectedAndHealthy")
        and not copy.activation_suspended
        and copy.lag is None
        and server.activation_policy != "Blocked"
        and server.cluster_state == "Up"
        and server.services.get("MSExchangeIS") == "Running"
    )


def best_activation_target(org: Organization, db: LabDatabase, exclude: str | None = None) -> LabCopy | None:
    candidates = [c for c in db.copies if healthy_for_activation(org, db, c, exclude)]
    candidates.sort(key=lambda c: (c.copy_queue + c.replay_queue, c.preference))
    return candidates[0] if candidates else None


def switchover(org: Organization, db: LabDatabase, target: LabCopy) -> None:
    old = db.copy_on(db.active_server)
    if old is not None:
        old.status = "Healthy"
    target.status = "Mounted"
    target.copy_queue = target.replay_queue = 0
    previous = org.server(db.active_server)
    org.tick(15)  # a switchover takes lab time
    db.active_server = target.server
    # The delivery queue for the database follows it to its new host.
    for q in list(previous.queues):
        if q.queue_type == "Delivery" and q.next_hop.lower() == db.name.lower() and not q.stuck:
            previous.queues.remove(q)
    new = org.server(target.server)
    if not any(q.queue_type == "Delivery" and q.next_hop.lower() == db.name.lower() for q in new.queues):
        from dagcheck.lab.faults import org_add_queue

        org_add_queue(new, "Delivery", "SmtpDeliveryToMailbox", db.name)


def _copy_status(call: Call, db: LabDatabase, copy: LabCopy) -> Any:
    org = call.org
    server = org.server(copy.server)
    active = copy.server.lower() == db.active_server.lower()
    now = org.now()
    return ps.obj(
        [f"{TASKS}.DatabaseCopyStatusEntry", *ps.CONFIGURABLE],
        {
            "Identity": ps.obj([f"{ps.EX}.Data.Directory.ADObjectId", "System.Object"], {"Name": f"{db.name}\\{server.name.upper()}"}, to_string=f"{db.name}\\{server.name.upper()}"),
            "Id": f"{db.name}\\{server.name.upper()}",
            "Name": f"{db.name}\\{server.name.upper()}",
            "DatabaseName": db.name,
            "Status": ps.enum(f"{TASKS}.CopyStatus", copy.status),
            "MailboxServer": server.name.upper(),
            "ActiveDatabaseCopy": db.active_server.lower(),
            "ActiveCopy": active,
            "ActivationPreference": copy.preference,
            "StatusRetrievedTime": now,
            "ActivationSuspended": copy.activation_suspended,
            "ActionInitiator": "Unknown",
            "ErrorMessage": copy.error_message,
            "ErrorEventId": None,
            "ExtendedErrorInfo": None,
            "SuspendComment": "Suspended by lab fault" if copy.status == "Suspended" else None,
            "RequiredLogsPresent": None,
            "SinglePageRestore": 0,
            "ContentIndexState": ps.enum(f"{TASKS}.ContentIndexStatusType", copy.content_index),
            "ContentIndexErrorMessage": "The index is failed." if copy.content_index == "Failed" else None,
            "CopyQueueLength": 0 if active else copy.copy_queue,
            "ReplayQueueLength": 0 if active else copy.replay_queue,
            "ReplaySuspended": copy.status == "Suspended",
            "ResumeBlocked": False,
            "ReseedBlocked": False,
            "LatestAvailableLogTime": now,
            "LastCopiedLogTime": now,
            "LastInspectedLogTime": now,
            "LastReplayedLogTime": now - dt.timedelta(seconds=0 if copy.lag is None else 604800),
            "LastLogGenerated": 100000,
            "LastLogCopied": 100000 - (0 if active else copy.copy_queue),
            "LastLogInspected": 100000 - (0 if active else copy.copy_queue),
            "LastLogReplayed": 100000 - (0 if active else copy.copy_queue + copy.replay_queue),
            "ReplayLagStatus": (f"Enabled:True; PlayDownReason:None; Percentage:100; Configured:{copy.lag}; "
                                f"Actual:{copy.lag}" if copy.lag else "Enabled:False; PlayDownReason:None; "
                                "Percentage:0; Configured:00:00:00; Actual:00:00:00"),
            "ActivationDisabledAndMoveNow": server.move_now,
            "AutoActivationPolicy": ps.enum(f"{SYSCONF}.DatabaseCopyAutoActivationPolicyType", server.activation_policy),
            "DiskFreeSpacePercent": 63,
        },
        to_string=f"{db.name}\\{server.name.upper()}",
    )


@cmdlet("Get-MailboxDatabaseCopyStatus", "Identity", "Server", "Active", "Local", "ConnectionStatus", "ExtendedErrorInfo")
def get_copy_status(call: Call) -> list[Any]:
    org = call.org
    if call.get("Identity") and call.get("Server"):
        raise LabCmdletError("Parameter set cannot be resolved using the specified named parameters.",
                             "InvalidArgument", f"AmbiguousParameterSet,{call.cmdlet}",
                             "System.Management.Automation.ParameterBindingException")
    pairs: list[tuple[LabDatabase, LabCopy]] = []
    if call.get("Identity"):
        ident = str(call.get("Identity"))
        db_name, _, server_name = ident.partition("\\")
        db = _lookup_db(call, db_name)
        for c in db.copies:
            if not server_name or c.server.lower() == server_name.lower():
                pairs.append((db, c))
        if not pairs:
            raise object_not_found(call.cmdlet, "ManagementObjectNotFoundException", ident)
    else:
        server = _lookup_server(call, call.get("Server")) if call.get("Server") else call.server
        for db in org.databases.values():
            c = db.copy_on(server.name)
            if c is not None:
                pairs.append((db, c))
    if call.switch("Active"):
        pairs = [(d, c) for d, c in pairs if d.active_server.lower() == c.server.lower()]
    return [_copy_status(call, d, c) for d, c in pairs]


def _kvp_list(pairs: list[tuple[Any, Any]], value_type: str) -> Any:
    # KeyValuePair<ADObjectId,T>[] over remote PS: an array of bags with Key and Value (shape guessed).
    items = [
        ps.obj([f"System.Collections.Generic.KeyValuePair`2[[{ps.EX}.Data.Directory.ADObjectId],[{value_type}]]", "System.ValueType", "System.Object"],
               {"Key": k, "Value": v}, to_string=f"[{k}, {v}]")
        for k, v in pairs
    ]
    return ps.typed_list(items, [f"System.Collections.Generic.KeyValuePair`2[[{ps.EX}.Data.Directory.ADObjectId],[{value_type}]][]", "System.Array", "System.Object"])


@cmdlet("Get-MailboxDatabase", "Identity", "Server", "Status", "IncludePreExchange2013")
def get_mailbox_database(call: Call) -> list[Any]:
    org = call.org
    dbs = list(org.databases.values())
    if call.get("Identity"):
        dbs = [_lookup_db(call, call.get("Identity"))]
    if call.get("Server"):
        server = _lookup_server(call, call.get("Server"))
        dbs = [d for d in dbs if d.copy_on(server.name)]
    status = call.switch("Status")
    out = []
    for db in dbs:
        active = org.server(db.active_server)
        copies = sorted(db.copies, key=lambda c: c.preference)
        props: dict[str, Any] = {
            "Name": db.name,
            "Server": _server_id(active),
            "ServerName": active.name.upper(),
            "MasterServerOrAvailabilityGroup": db.dag,
            "MasterType": "DatabaseAvailabilityGroup",
            "Servers": [org.server(c.server).name.upper() for c in copies],
            "ActivationPreference": _kvp_list([(org.server(c.server).name.upper(), c.preference) for c in copies], "System.Int32"),
            "ReplayLagTimes": _kvp_list([(org.server(c.server).name.upper(), c.lag or "00:00:00") for c in copies], f"{ps.EX}.Data.EnhancedTimeSpan"),
            "ReplicationType": "Remote" if len(copies) > 1 else "None",
            "Recovery": False,
            "MountAtStartup": True,
            "Guid": db.guid,
            "Identity": db.name,
        }
        copy = db.copy_on(db.active_server)
        mounted = copy is not None and copy.status == "Mounted" and active.services.get("MSExchangeIS") == "Running"
        props.update({
            "Mounted": mounted if status else None,
            "MountedOnServer": active.fqdn if status else None,
            "DatabaseSize": "152.1 MB (159,449,088 bytes)" if status else None,
            "BackupInProgress": False if status else None,
        })
        out.append(ps.obj([f"{SYSCONF}.MailboxDatabase", f"{SYSCONF}.Database", *ps.AD_PRESENTATION[1:]], props, to_string=db.name))
    return out


@cmdlet("Move-ActiveMailboxDatabase", "Identity", "Server", "ActivateOnServer", "MountDialOverride",
        "SkipClientExperienceChecks", "SkipLagChecks", "SkipHealthChecks", changes_state=True)
def move_active_mailbox_database(call: Call) -> list[Any]:
    org = call.org
    if call.get("Identity"):
        dbs = [_lookup_db(call, call.get("Identity"))]
    elif call.get("Server"):
        server = _lookup_server(call, call.get("Server"))
        dbs = [d for d in org.databases.values() if d.active_server.lower() == server.name.lower()]
    else:
        raise missing_parameter(call.cmdlet, "Identity")
    out = []
    for db in dbs:
        source = org.server(db.active_server)
        if call.get("ActivateOnServer"):
            target_server = _lookup_server(call, call.get("ActivateOnServer"))
            target = db.copy_on(target_server.name)
            if target is None or not healthy_for_activation(org, db, target, exclude=None):
                raise LabCmdletError(
                    f"An Active Manager operation failed. Error: The database action failed. Error: "
                    f"Database copy '{db.name}' on server '{target_server.fqdn}' is not healthy enough "
                    "to be activated.",
                    "InvalidOperation",
                    f"AmDbActionWrapperException,{call.cmdlet}",
                    "Microsoft.Exchange.Cluster.Replay.AmDbActionWrapperException",
                    target=db.name,
                )
        else:
            target = best_activation_target(org, db, exclude=source.name)
            if target is None:
                raise LabCmdletError(
                    f"An Active Manager operation failed. Error: No suitable copy of database '{db.name}' "
                    "is available for activation.", "InvalidOperation",
                    f"AmDbActionWrapperException,{call.cmdlet}",
                    "Microsoft.Exchange.Cluster.Replay.AmDbActionWrapperException", target=db.name)
        if target.server.lower() != source.name.lower():
            switchover(org, db, target)
        out.append(ps.obj(
            ["Microsoft.Exchange.Management.SystemConfigurationTasks.DatabaseMoveResult", "System.Object"],
            {"Identity": db.name, "ActiveServerAtStart": source.name.upper(),
             "ActiveServerAtEnd": org.server(target.server).name.upper(), "Status": "Succeeded",
             "NumberOfLogsLost": 0, "MountStatusAtMoveStart": "Mounted", "MountStatusAtMoveEnd": "Mounted"},
            to_string=db.name,
        ))
    return out


# ---- component states -------------------------------------------------------------------------


def _requester_list(s: LabServer, entries: dict[str, Any], component: str) -> Any:
    items = []
    for requester, e in entries.items():
        stamp = e.timestamp.strftime("%-m/%-d/%Y %-I:%M:%S %p")
        items.append(ps.obj(
            [f"{MGMT}.ServerComponentStatePresentationObject+RequesterDetails", "System.Object"],
            # State is a plain string at this depth: nested enums degrade (E19 fixture).
            {"Requester": requester, "State": e.state, "Timestamp": e.timestamp, "Component": component},
            to_string=f"Requestor:{requester}; State:{e.state}; Timestamp:{stamp}",
        ))
    return ps.typed_list(items, [
        f"System.Collections.Generic.List`1[[{MGMT}.ServerComponentStatePresentationObject+RequesterDetails, "
        "Microsoft.Exchange.Data.Directory, Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
        "System.Object",
    ])


@cmdlet("Get-ServerComponentState", "Identity", "Component")
def get_server_component_state(call: Call) -> list[Any]:
    s = _lookup_server(call, call.require("Identity"))
    wanted = call.get("Component")
    out = []
    swo_off = s.own_state("ServerWideOffline") != "Active"
    for component in COMPONENTS:
        if wanted and component.lower() != str(wanted).lower():
            continue
        out.append(ps.obj(
            [f"{MGMT}.ServerComponentStatePresentationObject", *ps.CONFIGURABLE],
            {
                "ServerFqdn": s.fqdn,
                "Component": component,
                "State": ps.enum("Microsoft.Exchange.Data.ServiceState", s.component_state(component)),
                "ServerWideOfflineIsOffline": swo_off,
                "RemoteStates": _requester_list(s, s.remote_states.get(component, {}), component),
                "LocalStates": _requester_list(s, s.local_states.get(component, {}), component),
                "Identity": _server_id(s),
                "IsValid": True,
                "ObjectState": ps.enum("Microsoft.Exchange.Data.ObjectState", "New"),
            },
        ))
    if wanted and not out:
        raise LabCmdletError(f"The component '{wanted}' is not valid.", "InvalidArgument",
                             f"ArgumentException,{call.cmdlet}", "System.ArgumentException")
    return out


@cmdlet("Set-ServerComponentState", "Identity", "Component", "State", "Requester", "TimeoutInSeconds",
        changes_state=True)
def set_server_component_state(call: Call) -> list[Any]:
    s = _lookup_server(call, call.require("Identity"))
    component = call.require("Component")
    match = next((c for c in COMPONENTS if c.lower() == str(component).lower()), None)
    if match is None:
        raise LabCmdletError(f"The component '{component}' is not valid.", "InvalidArgument",
                             f"ArgumentException,{call.cmdlet}", "System.ArgumentException")
    call.require("State")
    call.require("Requester")
    state = _enum_param(call, "State", ["Active", "Inactive", "Draining"])
    requester = _enum_param(call, "Requester", list(REQUESTERS))
    call.org.set_component_state(s, match, requester or "", state or "")
    if match == "HubTransport" and state == "Draining":
        for q in s.queues:
            q.status = "Ready" if not q.stuck else q.status
    return []


# ---- transport ---------------------------------------------------------------------------------


def _queue_obj(s: LabServer, q: Any) -> Any:
    identity = q.identity(s.name.upper())
    return ps.obj(
        ["Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo", "Microsoft.Exchange.Data.QueueViewer.PagedDataObject", "System.Object"],
        {
            "DeliveryType": ps.enum("Microsoft.Exchange.Data.DeliveryType", q.delivery_type),
            "NextHopDomain": q.next_hop,
            "TlsDomain": None,
            "NextHopConnector": "00000000-0000-0000-0000-000000000000",
            "Status": ps.enum("Microsoft.Exchange.Data.QueueViewer.QueueStatus", q.status),
            "MessageCount": q.message_count,
            "LastError": q.last_error,
            "RetryCount": 3 if q.status == "Retry" else 0,
            "LastRetryTime": None,
            "NextRetryTime": None,
            "DeferredMessageCount": 0,
            "LockedMessageCount": 0,
            "MessageCountsPerPriority": ps.typed_list([0, q.message_count, 0, 0], ["System.Int32[]", "System.Array", "System.Object"]),
            "IncomingRate": 0.0,
            "OutgoingRate": 0.0,
            "Velocity": 0.0,
            "NextHopCategory": "Internal",
            "RiskLevel": "Normal",
            "OutboundIPPool": 0,
            # QueueIdentity as a bag (shape guessed from QueueIdentity's public members).
            "Identity": ps.obj(["Microsoft.Exchange.Data.QueueViewer.QueueIdentity", "Microsoft.Exchange.Data.ObjectId", "System.Object"],
                               {"RowId": q.row_id, "Server": s.name.upper(), "NextHopDomain": q.next_hop,
                                "Type": q.queue_type, "IsLocal": True, "IsEmpty": False}, to_string=identity),
            "QueueIdentity": identity,
        },
        to_string=identity,
    )


@cmdlet("Get-Queue", "Identity", "Server", "Filter", "Include", "Exclude", "ResultSize")
def get_queue(call: Call) -> list[Any]:
    org = call.org
    s = _lookup_server(call, call.get("Server")) if call.get("Server") else call.server
    if s.services.get("MSExchangeTransport") != "Running" or (
        s.transport_available_at is not None and org.now() < s.transport_available_at
    ):
        raise LabCmdletError(
            f"Failed to connect to the Microsoft Exchange Transport service on computer \"{s.fqdn}\". "
            "Verify that a valid computer name was used and the Microsoft Exchange Transport service is started.",
            "NotSpecified", f"[Server={s.name.upper()}] LocalizedException,{call.cmdlet}",
            "Microsoft.Exchange.Data.QueueViewer.QueueViewerException", target=s.fqdn)
    queues = [q for q in s.queues if q.queue_type != "Poison" or q.message_count > 0]
    if call.get("Identity"):
        queues = [q for q in queues if q.identity(s.name).lower() == str(call.get("Identity")).lower()]
    if call.get("Exclude"):
        excluded = str(call.get("Exclude")).lower()
        queues = [q for q in queues if q.delivery_type.lower() != excluded]
    if call.get("Include"):
        included = str(call.get("Include")).lower()
        queues = [q for q in queues if q.delivery_type.lower() == included]
    return [_queue_obj(s, q) for q in queues]


@cmdlet("Redirect-Message", "Server", "Target", changes_state=True)
def redirect_message(call: Call) -> list[Any]:
    source = _lookup_server(call, call.require("Server"))
    target = _lookup_server(call, call.require("Target"))
    if target.component_state("HubTransport") != "Active":
        raise LabCmdletError(f"Target server {target.fqdn} is not accepting messages (HubTransport is "
                             f"{target.component_state('HubTransport')}).", "InvalidOperation",
                             f"[Server={source.name.upper()}] LocalizedException,{call.cmdlet}",
                             "Microsoft.Exchange.Data.QueueViewer.QueueViewerException")
    # From now on the source hands its queued mail to the target as lab time passes (Organization.tick);
    # stuck queues stay stuck, and shadow copies elsewhere go once the source is drained.
    source.redirect_target = target.name
    return []


# ---- client access ------------------------------------------------------------------------------


@cmdlet("Get-ClientAccessService", "Identity", "IncludeAlternateServiceAccountCredentialStatus",
        "IncludeAlternateServiceAccountCredentialPassword")
def get_client_access_service(call: Call) -> list[Any]:
    out = []
    for s in _target_servers(call):
        out.append(ps.obj(
            [f"{MGMT}.ClientAccessServer", *ps.AD_PRESENTATION],
            {
                "Name": s.name.upper(),
                "Fqdn": s.fqdn,
                "AutoDiscoverServiceInternalUri": s.scp_uri,
                "AutoDiscoverServiceCN": s.name.upper(),
                "AutoDiscoverServiceClassName": "ms-Exchange-AutoDiscover-Service",
                "AutoDiscoverServiceGuid": "77378f46-2c66-4aa9-a6a6-3e7a48b19596",
                "AutoDiscoverSiteScope": ps.mvp(s.site_scope),
                "IsOutOfService": False,
                "Identity": _server_id(s),
            },
            to_string=s.name.upper(),
        ))
    return out


def _vdir_cmdlet(cmdlet_name: str, vdir: str) -> None:
    type_name = {
        "owa": "ADOwaVirtualDirectory", "ecp": "ADEcpVirtualDirectory", "EWS": "ADWebServicesVirtualDirectory",
        "Autodiscover": "ADAutodiscoverVirtualDirectory", "mapi": "ADMapiVirtualDirectory",
        "OAB": "ADOabVirtualDirectory", "Microsoft-Server-ActiveSync": "ADMobileVirtualDirectory",
        "PowerShell": "ADPowerShellVirtualDirectory",
    }[vdir]

    def get_vdirs(call: Call) -> list[Any]:
        servers = [_lookup_server(call, call.get("Server"))] if call.get("Server") else list(call.org.servers.values())
        ad_only = call.switch("ADPropertiesOnly")
        out = []
        for s in servers:
            for site, path in (("Default Web Site", "1"), ("Exchange Back End", "2")):
                name = f"{vdir} ({site})"
                token = None if ad_only else ps.enum(f"{SYSCONF}.ExtendedProtectionTokenCheckingMode", s.vdir_tokens.get(name, "None"))
                out.append(ps.obj(
                    [f"{SYSCONF}.{type_name}", f"{SYSCONF}.ExchangeVirtualDirectory", f"{SYSCONF}.ADVirtualDirectory",
                     f"{SYSCONF}.ADConfigurationObject", f"{ps.EX}.Data.Directory.ADObject", f"{ps.EX}.Data.Directory.ADRawEntry", *ps.CONFIGURABLE],
                    {
                        "Name": name,
                        "Server": _server_id(s),
                        "MetabasePath": f"IIS://{s.fqdn}/W3SVC/{path}/ROOT/{vdir}",
                        "ExtendedProtectionTokenChecking": token,
                        "ExtendedProtectionFlags": ps.mvp([], element=ps.EP_FLAG),
                        "ExtendedProtectionSPNList": ps.mvp([]),
                        "InternalUrl": f"https://{s.fqdn}/{vdir}" if site == "Default Web Site" else None,
                        "ExternalUrl": None,
                        "AdminDisplayVersion": _version(s.admin_display_version),
                        "Identity": f"{s.name.upper()}\\{name}",
                    },
                    to_string=f"{s.name.upper()}\\{name}",
                ))
        return out

    cmdlet(cmdlet_name, "Identity", "Server", "ADPropertiesOnly", "ShowMailboxVirtualDirectories")(get_vdirs)


for _name, _vdir in VDIRS.items():
    _vdir_cmdlet(_name, _vdir)


# ---- monitoring cmdlets --------------------------------------------------------------------------


REPLICATION_CHECKS = (
    "ClusterService", "ReplayService", "ActiveManager", "TasksRpcListener", "TcpListener", "ServerLocatorService",
    "DagMembersUp", "ClusterNetwork", "QuorumGroup", "FileShareQuorum", "DatabaseRedundancy",
    "DatabaseAvailability", "DBCopySuspended", "DBCopyFailed", "DBInitializing", "DBDisconnected",
    "DBLogCopyKeepingUp", "DBLogReplayKeepingUp",
)
CHECK_DESCRIPTIONS = {c: f"Checks {c}" for c in REPLICATION_CHECKS}
CHECK_DESCRIPTIONS.update({
    "ClusterService": "Checks if the cluster service is healthy.",
    "ReplayService": "Checks if the Microsoft Exchange Replication service is running.",
    "DagMembersUp": "Verifies that the members of a database availability group are up and running.",
    "QuorumGroup": "Checks that the quorum and witness for the database availability group is healthy.",
    "FileShareQuorum": "Verifies that the path used for the file share witness can be reached.",
    "DatabaseRedundancy": "Checks whether there are enough configured and healthy database copies.",
    "DBCopySuspended": "Checks whether any mailbox database copies are in a state of Suspended.",
    "DBCopyFailed": "Checks whether any mailbox database copies are in a state of Failed.",
    "DBLogCopyKeepingUp": "Verifies that log copying and inspection by the passive copies are able to keep up with log generation activity on the active copy.",
    "DBLogReplayKeepingUp": "Verifies that replay activity for the passive copies is able to keep up with log copying and inspection activity.",
})


def _replication_outcomes(org: Organization, s: LabServer) -> dict[str, str]:
    copies = [(db, db.copy_on(s.name)) for db in org.databases_with_copy_on(s.name)]
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
        present, total, witness = quorum(org, dag.name)
        if present * 2 <= total:
            res["QuorumGroup"] = "Failed"
        if witness and not dag.witness_available:
            res["FileShareQuorum"] = "Failed"
    for db, copy in copies:
        others = [c for c in db.copies if c is not copy and c.status in ("Healthy", "Mounted", "DisconnectedAndHealthy") and c.lag is None]
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


@cmdlet("Test-ReplicationHealth", "Identity", "ActiveDirectoryTimeout", "MonitoringContext", "OutputObjects", "TransientEventSuppressionWindow")
def test_replication_health(call: Call) -> list[Any]:
    s = _lookup_server(call, call.get("Identity")) if call.get("Identity") else call.server
    out = []
    for check, result in _replication_outcomes(call.org, s).items():
        out.append(ps.obj(
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
        ))
    return out


@cmdlet("Test-ServiceHealth", "Server", "ActiveDirectoryTimeout", "MonitoringContext")
def test_service_health(call: Call) -> list[Any]:
    s = _lookup_server(call, call.get("Server")) if call.get("Server") else call.server
    out = []
    for role, services in ROLE_SERVICES.items():
        running = [x for x in services if s.services.get(x) == "Running"]
        stopped = [x for x in services if s.services.get(x) != "Running"]
        out.append(ps.obj(
            ["Microsoft.Exchange.Monitoring.ExchangeServicesStatus", *ps.CONFIGURABLE],
            {"Role": role, "RequiredServicesRunning": not stopped, "ServicesNotRunning": ps.mvp(stopped),
             "ServicesRunning": ps.mvp(running), "Identity": None, "IsValid": True,
             "ObjectState": ps.enum("Microsoft.Exchange.Data.ObjectState", "New")},
        ))
    return out


@cmdlet("Test-MAPIConnectivity", "Database", "Server", "Identity", "PerConnectionTimeout", "ActiveDirectoryTimeout",
        "MonitoringContext", "AllConnectionsTimeout")
def test_mapi_connectivity(call: Call) -> list[Any]:
    org = call.org
    if call.get("Database"):
        dbs = [_lookup_db(call, call.get("Database"))]
    else:
        s = _lookup_server(call, call.get("Server")) if call.get("Server") else call.server
        dbs = [d for d in org.databases.values() if d.active_server.lower() == s.name.lower()]
    out = []
    for db in dbs:
        host = org.server(db.active_server)
        copy = db.copy_on(db.active_server)
        ok = copy is not None and copy.status == "Mounted" and host.services.get("MSExchangeIS") == "Running"
        out.append(ps.obj(
            ["Microsoft.Exchange.Monitoring.MapiTransactionOutcome", "Microsoft.Exchange.Monitoring.TransactionOutcomeBase", *ps.CONFIGURABLE],
            {
                "Server": host.name.upper(), "Database": db.name,
                "Mailbox": f"SystemMailbox{{{db.guid}}}", "MailboxGuid": db.guid, "IsArchive": False,
                "IsDatabaseCopyActive": True, "Latency": dt.timedelta(milliseconds=12) if ok else None,
                "Error": None if ok else f"[Microsoft.Exchange.Data.Storage.ConnectionFailedPermanentException]: Database {db.name} is offline.",
                "Result": "Success" if ok else "*FAILURE*",
                "Identity": None, "IsValid": True,
            },
        ))
    return out


# ---- Windows endpoint ------------------------------------------------------------------------------


def _cluster_node(org: Organization, s: LabServer, dag_name: str) -> Any:
    return ps.obj(
        ["Microsoft.FailoverClusters.PowerShell.ClusterNode", "Microsoft.FailoverClusters.PowerShell.ClusterObject", "System.Object"],
        {
            "Name": s.name.upper(),
            "State": ps.enum("Microsoft.FailoverClusters.PowerShell.ClusterNodeState", s.cluster_state),
            "Id": str(sorted(org.servers).index(s.name.lower()) + 1),
            "NodeWeight": 1,
            "DynamicWeight": 0 if s.cluster_state != "Up" else 1,
            "Cluster": dag_name,
            "DrainStatus": "NotInitiated",
        },
        to_string=s.name.upper(),
    )


def _cluster_members(call: Call) -> tuple[Any, list[LabServer]]:
    dag = call.org.dag_of(call.server)
    if dag is None:
        raise LabCmdletError("The cluster service is not running on this computer.", "ConnectionError",
                             "ClusterCmdletNoCluster,Microsoft.FailoverClusters.PowerShell.GetNodeCommand",
                             "System.Exception")
    if call.server.services.get("ClusSvc") != "Running":
        raise LabCmdletError(f"Cluster service on node '{call.server.name.upper()}' is not running.", "ConnectionError",
                             "ClusterCmdletNoCluster,Microsoft.FailoverClusters.PowerShell.GetNodeCommand",
                             "System.Exception")
    return dag, [call.org.server(m) for m in dag.members]


@cmdlet("Get-ClusterNode", "Name", "Cluster", "InputObject", endpoint=WINDOWS)
def get_cluster_node(call: Call) -> list[Any]:
    dag, members = _cluster_members(call)
    if call.get("Name"):
        members = [m for m in members if m.name.lower() == str(call.get("Name")).lower()]
        if not members:
            raise LabCmdletError(f"The cluster node '{call.get('Name')}' was not found.", "ObjectNotFound",
                                 "ClusterObjectNotFound,Microsoft.FailoverClusters.PowerShell.GetNodeCommand",
                                 "System.Exception")
    return [_cluster_node(call.org, m, dag.name) for m in members]


def _node_param(call: Call) -> LabServer:
    name = call.get("Name") or call.server.name
    return _lookup_server(call, name)


@cmdlet("Suspend-ClusterNode", "Name", "Cluster", "Drain", "ForceDrain", "Wait", "TargetNode", endpoint=WINDOWS, changes_state=True)
def suspend_cluster_node(call: Call) -> list[Any]:
    dag, _ = _cluster_members(call)
    node = _node_param(call)
    if node.cluster_state == "Down":
        raise LabCmdletError(f"The node '{node.name.upper()}' is down.", "InvalidOperation",
                             "Suspend-ClusterNode,Microsoft.FailoverClusters.PowerShell.SuspendClusterNodeCommand",
                             "System.Exception")
    node.cluster_state = "Paused"
    if dag.primary_active_manager.lower() == node.name.lower():
        # The PAM role (the cluster group owner) moves to another node that is Up.
        nxt = next((m for m in dag.members if call.org.server(m).cluster_state == "Up"), None)
        if nxt:
            dag.primary_active_manager = nxt
    return [_cluster_node(call.org, node, dag.name)]


@cmdlet("Resume-ClusterNode", "Name", "Cluster", "Failback", endpoint=WINDOWS, changes_state=True)
def resume_cluster_node(call: Call) -> list[Any]:
    dag, _ = _cluster_members(call)
    node = _node_param(call)
    if node.cluster_state == "Paused":
        node.cluster_state = "Up"
    return [_cluster_node(call.org, node, dag.name)]


def _service_obj(s: LabServer, name: str) -> Any:
    status = s.services[name]
    return ps.obj(
        ["System.ServiceProcess.ServiceController", "System.ComponentModel.Component", "System.MarshalByRefObject", "System.Object"],
        {
            "Name": name, "DisplayName": SERVICE_DISPLAY_NAMES.get(name, name),
            "Status": ps.enum("System.ServiceProcess.ServiceControllerStatus", status),
            "StartType": ps.enum("System.ServiceProcess.ServiceStartMode", "Automatic"),
            "ServiceName": name, "MachineName": ".", "CanStop": status == "Running",
        },
        to_string="System.ServiceProcess.ServiceController",
    )


@cmdlet("Get-Service", "Name", "DisplayName", "ComputerName", endpoint=WINDOWS)
def get_service(call: Call) -> list[Any]:
    s = call.server
    names = call.get("Name")
    if names is None:
        return [_service_obj(s, n) for n in sorted(s.services)]
    wanted = [names] if isinstance(names, str) else list(names)
    out = []
    for n in wanted:
        match = next((k for k in s.services if k.lower() == str(n).lower()), None)
        if match is None:
            raise LabCmdletError(f"Cannot find any service with service name '{n}'.", "ObjectNotFound",
                                 "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
                                 "Microsoft.PowerShell.Commands.ServiceCommandException", target=str(n))
        out.append(_service_obj(s, match))
    return out


@cmdlet("Restart-Service", "Name", "Force", "PassThru", endpoint=WINDOWS, changes_state=True)
def restart_service(call: Call) -> list[Any]:
    s = call.server
    name = str(call.require("Name"))
    match = next((k for k in s.services if k.lower() == name.lower()), None)
    if match is None:
        raise LabCmdletError(f"Cannot find any service with service name '{name}'.", "ObjectNotFound",
                             "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.RestartServiceCommand",
                             "Microsoft.PowerShell.Commands.ServiceCommandException", target=name)
    s.services[match] = "Running"
    if match == "MSExchangeTransport":
        # Transport answers Get-Queue again only after its BootLoader is done (ExchangeDsc waits up to 5 min).
        s.transport_available_at = call.org.now() + dt.timedelta(seconds=60)
        s.redirect_target = None
    call.org.tick(20)
    return [_service_obj(s, match)] if call.switch("PassThru") else []


@cmdlet("Get-Command", "Name", "CommandType", endpoint=WINDOWS)
def get_command(call: Call) -> list[Any]:
    name = str(call.require("Name"))
    if name.lower() != "exsetup.exe":
        raise command_not_found(name)
    app = ps.obj(
        ["System.Management.Automation.ApplicationInfo", "System.Management.Automation.CommandInfo", "System.Object"],
        {"Name": "ExSetup.exe", "CommandType": "Application",
         "Path": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin\\ExSetup.exe",
         "FileVersionInfo": exsetup_file_version(call.server)},
        to_string="ExSetup.exe",
    )
    return [app]


def exsetup_file_version(s: LabServer) -> Any:
    """ExSetup.exe's FileVersionInfo, as `Get-Command ExSetup.exe | ForEach-Object FileVersionInfo` gives it."""
    a, b, c, d = s.exsetup_version
    text = f"{a:02d}.{b:02d}.{c:04d}.{d:03d}"
    return ps.obj(
        ["System.Diagnostics.FileVersionInfo", "System.Object"],
        {
            "Comments": "Service Pack 2", "CompanyName": "Microsoft Corporation", "FileBuildPart": c,
            "FileDescription": "", "FileMajorPart": a, "FileMinorPart": b,
            "FileName": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin\\ExSetup.exe",
            "FilePrivatePart": d, "FileVersion": text, "InternalName": "ExSetup.exe",
            "ProductBuildPart": c, "ProductMajorPart": a, "ProductMinorPart": b, "ProductName": "Microsoft® Exchange",
            "ProductPrivatePart": d, "ProductVersion": text,
        },
        to_string=f"File:             C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin\\ExSetup.exe\r\nFileVersion:      {text}\r\n",
    )
