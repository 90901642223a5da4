"""Managed Availability: Get-ServerHealth, one MonitorHealthEntry per monitor of the server's health sets.

Property names and order follow the product's MonitorHealthEntry (Server, CurrentHealthSetState, Name,
TargetResource, HealthSetName, HealthGroupName, AlertValue, FirstAlertObservedTime, Description,
IsHaImpacting, ..., LastTransitionTime) as Learn's "Manage health sets and server health" shows them
(`Format-Table Server,CurrentHealthSetState,Name,HealthSetName,AlertValue,HealthGroupName`). Shape guessed
(no capture): the enum integers, CurrentHealthSetState NotApplicable for the protocol health sets, an empty
TargetResource, and the Identity "<HealthSet>\\<Monitor>\\<TargetResource>".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dagcheck.lab import products
from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import Call, cmdlet, lookup_server
from dagcheck.lab.objects import LabServer

ENTRY = "Microsoft.Office.Datacenter.ActiveMonitoring.Management.Common.MonitorHealthEntry"
# When the lab's monitors were defined (a server's definitions are created at service start; guessed).
DEFINED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _entry(server: str, health_set: str, monitor: str, group: str, since: dt.datetime | None) -> Any:
    alert = "Unhealthy" if since is not None else "Healthy"
    return ps.obj(
        [ENTRY, *ps.CONFIGURABLE],
        {
            "Server": server.upper(),
            "CurrentHealthSetState": ps.enum(
                "Microsoft.Exchange.Data.Storage.ActiveMonitoring.MonitorServerComponentState", "NotApplicable"
            ),
            "Name": monitor,
            "TargetResource": "",
            "HealthSetName": health_set,
            "HealthGroupName": group,
            "AlertValue": ps.enum("Microsoft.Exchange.Data.Storage.ActiveMonitoring.MonitorAlertState", alert),
            "FirstAlertObservedTime": since,
            "Description": None,
            "IsHaImpacting": False,
            "LastTransitionTime": since or DEFINED,
            "Identity": f"{health_set}\\{monitor}\\",
            "IsValid": True,
            "ObjectState": ps.enum("Microsoft.Exchange.Data.ObjectState", "New"),
        },
        to_string=f"{health_set}\\{monitor}\\",
    )


def _unhealthy_since(call: Call, s: LabServer, health_set: str, monitor: str) -> dt.datetime | None:
    """When the monitor turned Unhealthy: a fault on it, or its protocol's back-end application pool (or the
    Exchange Back End site) stopped, which its probes reach (products.PROTOCOL_APP_POOLS); None when Healthy.
    Guessed: the lab reports a derived alert as observed now (a real monitor alerts after its probes' interval)."""
    if (health_set, monitor) in s.unhealthy_monitors:
        return s.unhealthy_monitors[(health_set, monitor)]
    pool = products.PROTOCOL_APP_POOLS.get(health_set)
    if pool is not None and (pool in s.stopped_iis or products.BACK_END in s.stopped_iis):
        return call.org.now()
    return None


@cmdlet("Get-ServerHealth", "Identity", "HaImpactingOnly", "HealthSet")
def get_server_health(call: Call) -> list[Any]:
    s = lookup_server(call, call.require("Identity"))
    wanted = str(call.get("HealthSet") or "").lower()
    return [
        _entry(s.name, hs, monitor, group, _unhealthy_since(call, s, hs, monitor))
        for hs, monitor, group in products.HEALTH_MONITORS
        if not wanted or hs.lower() == wanted
    ]
