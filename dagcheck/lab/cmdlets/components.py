"""Get-ServerComponentState and Set-ServerComponentState (requesters, local and remote states)."""

from __future__ import annotations

from typing import Any

from dagcheck.lab import products
from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import (
    MGMT,
    Call,
    cmdlet,
    enum_param,
    lookup_server,
    server_id,
)
from dagcheck.lab.errors import LabCmdletError
from dagcheck.lab.objects import LabServer


def _requester_list(s: LabServer, entries: dict[str, Any], component: str) -> Any:
    items = []
    for requester, e in entries.items():
        stamp = e.timestamp.strftime("%-m/%-d/%Y %-I:%M:%S %p")
        items.append(
            ps.obj(
                [f"{MGMT}.ServerComponentStatePresentationObject+RequesterDetails", "System.Object"],
                # State is a plain string at this depth: nested enums degrade (E19 fixture).
                {"Requester": requester, "State": e.state, "Timestamp": e.timestamp, "Component": component},
                to_string=f"Requestor:{requester}; State:{e.state}; Timestamp:{stamp}",
            )
        )
    return ps.typed_list(
        items,
        [
            f"System.Collections.Generic.List`1[[{MGMT}.ServerComponentStatePresentationObject+RequesterDetails, "
            "Microsoft.Exchange.Data.Directory, Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
            "System.Object",
        ],
    )


@cmdlet("Get-ServerComponentState", "Identity", "Component")
def get_server_component_state(call: Call) -> list[Any]:
    s = lookup_server(call, call.require("Identity"))
    wanted = call.get("Component")
    out = []
    swo_off = s.own_state("ServerWideOffline") != "Active"
    for component in s.components:
        if wanted and component.lower() != str(wanted).lower():
            continue
        out.append(
            ps.obj(
                [f"{MGMT}.ServerComponentStatePresentationObject", *ps.CONFIGURABLE],
                {
                    "ServerFqdn": s.fqdn,
                    "Component": component,
                    "State": ps.enum("Microsoft.Exchange.Data.ServiceState", s.component_state(component)),
                    "ServerWideOfflineIsOffline": swo_off,
                    "RemoteStates": _requester_list(s, s.remote_states.get(component, {}), component),
                    "LocalStates": _requester_list(s, s.local_states.get(component, {}), component),
                    "Identity": server_id(s),
                    "IsValid": True,
                    "ObjectState": ps.enum("Microsoft.Exchange.Data.ObjectState", "New"),
                },
            )
        )
    if wanted and not out:
        raise LabCmdletError(
            f"The component '{wanted}' is not valid.",
            "InvalidArgument",
            f"ArgumentException,{call.cmdlet}",
            "System.ArgumentException",
        )
    return out


@cmdlet("Set-ServerComponentState", "Identity", "Component", "State", "Requester", "TimeoutInSeconds", changes_state=True)
def set_server_component_state(call: Call) -> list[Any]:
    s = lookup_server(call, call.require("Identity"))
    component = call.require("Component")
    match = next((c for c in s.components if c.lower() == str(component).lower()), None)
    if match is None:
        raise LabCmdletError(
            f"The component '{component}' is not valid.",
            "InvalidArgument",
            f"ArgumentException,{call.cmdlet}",
            "System.ArgumentException",
        )
    call.require("State")
    call.require("Requester")
    state = enum_param(call, "State", ["Active", "Inactive", "Draining"])
    requester = enum_param(call, "Requester", list(products.REQUESTERS))
    call.org.set_component_state(s, match, requester or "", state or "")
    if match == "HubTransport" and state == "Draining":
        for q in s.queues:
            q.status = "Ready" if not q.stuck else q.status
    return []
