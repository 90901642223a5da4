"""Database copies and databases: Get-MailboxDatabaseCopyStatus, Get-MailboxDatabase, Move-ActiveMailboxDatabase."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import (
    SYSCONF,
    TASKS,
    Call,
    cmdlet,
    lookup_db,
    lookup_server,
    server_id,
)
from dagcheck.lab.errors import LabCmdletError, missing_parameter, object_not_found
from dagcheck.lab.objects import LabCopy, LabDatabase


def _copy_status(call: Call, db: LabDatabase, copy: LabCopy) -> Any:
    org = call.org
    server = org.server(copy.server)
    active = copy.server.lower() == db.active_server.lower()
    now = org.now()
    return ps.obj(
        [f"{TASKS}.DatabaseCopyStatusEntry", *ps.CONFIGURABLE],
        {
            "Identity": ps.obj(
                [f"{ps.EX}.Data.Directory.ADObjectId", "System.Object"],
                {"Name": f"{db.name}\\{server.name.upper()}"},
                to_string=f"{db.name}\\{server.name.upper()}",
            ),
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
            "ReplayLagStatus": (
                f"Enabled:True; PlayDownReason:None; Percentage:100; Configured:{copy.lag}; Actual:{copy.lag}"
                if copy.lag
                else "Enabled:False; PlayDownReason:None; Percentage:0; Configured:00:00:00; Actual:00:00:00"
            ),
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
        raise LabCmdletError(
            "Parameter set cannot be resolved using the specified named parameters.",
            "InvalidArgument",
            f"AmbiguousParameterSet,{call.cmdlet}",
            "System.Management.Automation.ParameterBindingException",
        )
    pairs: list[tuple[LabDatabase, LabCopy]] = []
    if call.get("Identity"):
        ident = str(call.get("Identity"))
        db_name, _, server_name = ident.partition("\\")
        db = lookup_db(call, db_name)
        for c in db.copies:
            if not server_name or c.server.lower() == server_name.lower():
                pairs.append((db, c))
        if not pairs:
            raise object_not_found(call.cmdlet, "ManagementObjectNotFoundException", ident)
    else:
        server = lookup_server(call, call.get("Server")) if call.get("Server") else call.server
        for db in org.databases.values():
            if (on_server := db.copy_on(server.name)) is not None:
                pairs.append((db, on_server))
    if call.switch("Active"):
        pairs = [(d, c) for d, c in pairs if d.active_server.lower() == c.server.lower()]
    return [_copy_status(call, d, c) for d, c in pairs]


def _kvp_list(pairs: list[tuple[Any, Any]], value_type: str) -> Any:
    # KeyValuePair<ADObjectId,T>[] over remote PS: an array of bags with Key and Value (shape guessed).
    items = [
        ps.obj(
            [
                f"System.Collections.Generic.KeyValuePair`2[[{ps.EX}.Data.Directory.ADObjectId],[{value_type}]]",
                "System.ValueType",
                "System.Object",
            ],
            {"Key": k, "Value": v},
            to_string=f"[{k}, {v}]",
        )
        for k, v in pairs
    ]
    return ps.typed_list(
        items,
        [
            f"System.Collections.Generic.KeyValuePair`2[[{ps.EX}.Data.Directory.ADObjectId],[{value_type}]][]",
            "System.Array",
            "System.Object",
        ],
    )


@cmdlet("Get-MailboxDatabase", "Identity", "Server", "Status", "IncludePreExchange2013")
def get_mailbox_database(call: Call) -> list[Any]:
    org = call.org
    dbs = list(org.databases.values())
    if call.get("Identity"):
        dbs = [lookup_db(call, call.get("Identity"))]
    if call.get("Server"):
        server = lookup_server(call, call.get("Server"))
        dbs = [d for d in dbs if d.copy_on(server.name)]
    status = call.switch("Status")
    out = []
    for db in dbs:
        active = org.server(db.active_server)
        copies = sorted(db.copies, key=lambda c: c.preference)
        props: dict[str, Any] = {
            "Name": db.name,
            "Server": server_id(active),
            "ServerName": active.name.upper(),
            "MasterServerOrAvailabilityGroup": db.dag,
            "MasterType": "DatabaseAvailabilityGroup",
            "Servers": [org.server(c.server).name.upper() for c in copies],
            "ActivationPreference": _kvp_list([(server_id(org.server(c.server)), c.preference) for c in copies], "System.Int32"),
            "ReplayLagTimes": _kvp_list(
                [(server_id(org.server(c.server)), ps.enhanced_time_span(c.lag or "00:00:00")) for c in copies],
                f"{ps.EX}.Data.EnhancedTimeSpan",
            ),
            "ReplicationType": "Remote" if len(copies) > 1 else "None",
            "Recovery": False,
            "MountAtStartup": True,
            "Guid": db.guid,
            "Identity": db.name,
        }
        copy = db.copy_on(db.active_server)
        mounted = copy is not None and copy.status == "Mounted" and active.services.get("MSExchangeIS") == "Running"
        props.update(
            {
                "Mounted": mounted if status else None,
                "MountedOnServer": active.fqdn if status else None,
                "DatabaseSize": ps.byte_quantified_size(db.size_bytes) if status else None,
                "BackupInProgress": False if status else None,
            }
        )
        out.append(
            ps.obj([f"{SYSCONF}.MailboxDatabase", f"{SYSCONF}.Database", *ps.AD_PRESENTATION[1:]], props, to_string=db.name)
        )
    return out


@cmdlet(
    "Move-ActiveMailboxDatabase",
    "Identity",
    "Server",
    "ActivateOnServer",
    "MountDialOverride",
    "SkipClientExperienceChecks",
    "SkipLagChecks",
    "SkipHealthChecks",
    changes_state=True,
)
def move_active_mailbox_database(call: Call) -> list[Any]:
    org = call.org
    if call.get("Identity"):
        dbs = [lookup_db(call, call.get("Identity"))]
    elif call.get("Server"):
        server = lookup_server(call, call.get("Server"))
        dbs = [d for d in org.databases.values() if d.active_server.lower() == server.name.lower()]
    else:
        raise missing_parameter(call.cmdlet, "Identity")
    out = []
    for db in dbs:
        source = org.server(db.active_server)
        if org.faults_matching("databases_wont_move", source.name):
            # guessed: the text of a move Active Manager gives up on (the shape of its other move errors)
            raise LabCmdletError(
                f"An Active Manager operation failed. Error: The database action failed. Error: An error "
                f"occurred while trying to move database '{db.name}' from server '{source.fqdn}'.",
                "InvalidOperation",
                "AmDbActionWrapperException,Microsoft.Exchange.Management.SystemConfigurationTasks.MoveActiveMailboxDatabase",
            )
        if call.get("ActivateOnServer"):
            target_server = lookup_server(call, call.get("ActivateOnServer"))
            target = db.copy_on(target_server.name)
            if target is None or not org.healthy_for_activation(target, exclude=None):
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
            target = org.best_activation_target(db, exclude=source.name)
            if target is None:
                raise LabCmdletError(
                    f"An Active Manager operation failed. Error: No suitable copy of database '{db.name}' "
                    "is available for activation.",
                    "InvalidOperation",
                    f"AmDbActionWrapperException,{call.cmdlet}",
                    "Microsoft.Exchange.Cluster.Replay.AmDbActionWrapperException",
                    target=db.name,
                )
        if target.server.lower() != source.name.lower():
            org.switchover(db, target)
        out.append(
            ps.obj(
                ["Microsoft.Exchange.Management.SystemConfigurationTasks.DatabaseMoveResult", "System.Object"],
                {
                    "Identity": db.name,
                    "ActiveServerAtStart": source.name.upper(),
                    "ActiveServerAtEnd": org.server(target.server).name.upper(),
                    "Status": "Succeeded",
                    "NumberOfLogsLost": 0,
                    "MountStatusAtMoveStart": "Mounted",
                    "MountStatusAtMoveEnd": "Mounted",
                },
                to_string=db.name,
            )
        )
    return out


@cmdlet("Resume-MailboxDatabaseCopy", "Identity", "ReplicationOnly", "DisableReplayLag", "EnableReplayLag", changes_state=True)
def resume_mailbox_database_copy(call: Call) -> list[Any]:
    """Resumes replication and activation of a copy (Identity `<Database>\\<Server>`); -ReplicationOnly resumes
    replication and leaves an activation suspension in place. Returns nothing, as the real cmdlet does.
    Learn: https://learn.microsoft.com/powershell/module/exchange/resume-mailboxdatabasecopy
    The lab resumes a Suspended copy to Healthy at once (a real one passes through Initializing and
    Resynchronizing); a FailedAndSuspended copy stays as it is, because what failed it is still there."""
    identity = str(call.require("Identity"))
    db_name, sep, server_name = identity.partition("\\")
    if not sep:
        raise object_not_found(call.cmdlet, "ManagementObjectNotFoundException", identity)
    db = lookup_db(call, db_name)
    server = lookup_server(call, server_name)
    copy = db.copy_on(server.name)
    if copy is None:
        raise object_not_found(call.cmdlet, "ManagementObjectNotFoundException", identity)
    if copy.status == "Suspended":
        copy.status = "Healthy"
    if not call.switch("ReplicationOnly") and copy.status != "FailedAndSuspended":
        copy.activation_suspended = False
    return []
