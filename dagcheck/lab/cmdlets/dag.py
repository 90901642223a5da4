"""Get-DatabaseAvailabilityGroup, with and without -Status (quorum, PAM, witness share)."""

from __future__ import annotations

from typing import Any

from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import (
    MGMT,
    SYSCONF,
    Call,
    cmdlet,
    server_id,
    server_ids,
)
from dagcheck.lab.errors import object_not_found


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
        present, total, witness = call.org.quorum(d.name)
        props: dict[str, Any] = {
            "Name": d.name,
            "Servers": server_ids(members),
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
            props.update(
                {
                    "OperationalServers": server_ids([m for m in members if m.cluster_state in ("Up", "Paused")]),
                    "PrimaryActiveManager": server_id(pam),
                    "ServersInMaintenance": server_ids(in_maintenance),
                    "ServersInDeferredRecovery": [],
                    "ReplicationPort": 64327,
                    "WitnessShareInUse": ps.enum(
                        f"{SYSCONF}.WitnessShareUsage",
                        ("Primary" if d.witness_available else "InvalidConfiguration") if witness else "None",
                    ),
                }
            )
        else:
            props.update(
                {
                    "OperationalServers": None,
                    "PrimaryActiveManager": None,
                    "ServersInMaintenance": None,
                    "WitnessShareInUse": None,
                }
            )
        out.append(ps.obj([f"{MGMT}.DatabaseAvailabilityGroup", *ps.AD_PRESENTATION], props, to_string=d.name))
    return out
