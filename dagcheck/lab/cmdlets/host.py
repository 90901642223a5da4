"""Windows PowerShell cmdlets of the Windows endpoint: Get-Service, Restart-Service, Get-Command (ExSetup.exe)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dagcheck.lab import products
from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import (
    WINDOWS,
    Call,
    cmdlet,
)
from dagcheck.lab.errors import LabCmdletError, command_not_found
from dagcheck.lab.objects import LabServer


def _service_obj(s: LabServer, name: str) -> Any:
    status = s.services[name]
    return ps.obj(
        [
            "System.ServiceProcess.ServiceController",
            "System.ComponentModel.Component",
            "System.MarshalByRefObject",
            "System.Object",
        ],
        {
            "Name": name,
            "DisplayName": products.SERVICE_DISPLAY_NAMES.get(name, name),
            "Status": ps.enum("System.ServiceProcess.ServiceControllerStatus", status),
            "StartType": ps.enum("System.ServiceProcess.ServiceStartMode", s.start_types.get(name, "Automatic")),
            "ServiceName": name,
            "MachineName": ".",
            "CanStop": status == "Running",
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
            raise LabCmdletError(
                f"Cannot find any service with service name '{n}'.",
                "ObjectNotFound",
                "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
                "Microsoft.PowerShell.Commands.ServiceCommandException",
                target=str(n),
            )
        out.append(_service_obj(s, match))
    return out


@cmdlet("Restart-Service", "Name", "Force", "PassThru", endpoint=WINDOWS, changes_state=True)
def restart_service(call: Call) -> list[Any]:
    s = call.server
    name = str(call.require("Name"))
    match = next((k for k in s.services if k.lower() == name.lower()), None)
    if match is None:
        raise LabCmdletError(
            f"Cannot find any service with service name '{name}'.",
            "ObjectNotFound",
            "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.RestartServiceCommand",
            "Microsoft.PowerShell.Commands.ServiceCommandException",
            target=name,
        )
    if s.start_types.get(match) == "Disabled":
        # Stopped, then refused by the service control manager (ERROR_SERVICE_DISABLED). Message and error id
        # as Windows PowerShell 5.1 words them for a service it cannot start (guessed for the disabled case).
        s.services[match] = "Stopped"
        display = products.SERVICE_DISPLAY_NAMES.get(match, match)
        raise LabCmdletError(
            f"Service '{display} ({match})' cannot be started due to the following error: "
            f"Cannot start service {match} on computer '.'.",
            "OpenError",
            "CouldNotStartService,Microsoft.PowerShell.Commands.RestartServiceCommand",
            "Microsoft.PowerShell.Commands.ServiceCommandException",
            target=match,
        )
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
        {
            "Name": "ExSetup.exe",
            "CommandType": "Application",
            "Path": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin\\ExSetup.exe",
            "FileVersionInfo": exsetup_file_version(call.server),
        },
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
            "Comments": "Service Pack 2",
            "CompanyName": "Microsoft Corporation",
            "FileBuildPart": c,
            "FileDescription": "",
            "FileMajorPart": a,
            "FileMinorPart": b,
            "FileName": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin\\ExSetup.exe",
            "FilePrivatePart": d,
            "FileVersion": text,
            "InternalName": "ExSetup.exe",
            "ProductBuildPart": c,
            "ProductMajorPart": a,
            "ProductMinorPart": b,
            "ProductName": "Microsoft® Exchange",
            "ProductPrivatePart": d,
            "ProductVersion": text,
        },
        to_string=(
            "File:             C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin\\ExSetup.exe\r\n"
            f"FileVersion:      {text}\r\n"
        ),
    )


@cmdlet("Get-Date", endpoint=WINDOWS)
def get_date(call: Call) -> list[Any]:
    """The server's Windows clock: real time plus the server's offset (a clock_skew fault sets one). A plain
    DateTime, as Get-Date returns it (serialized as <DT> with the UTC offset)."""
    return [dt.datetime.now(dt.UTC) + dt.timedelta(seconds=call.server.clock_offset)]
