"""Windows services with their state and start type, in one call per server (Get-Service, Windows endpoint).

How dagcheck read services before: Test-ServiceHealth over Exchange's endpoint (DAG-SVC-001: only which
required services run) and `sc.exe queryex` over WinRS (HOST-004: only the state). Neither says how a service
starts: sc.exe prints START_TYPE only per service (`sc qc <name>`), Test-ServiceHealth not at all. Get-Service
in Windows PowerShell 5.1 (Windows Server 2016 and later, every Exchange 2016/2019/SE host) returns every
service with Name, Status and StartType (System.ServiceProcess.ServiceStartMode: Boot 0, System 1, Automatic 2,
Manual 3, Disabled 4; Learn, Get-Service and ServiceStartMode) in one call. "Automatic (Delayed Start)" also
shows as Automatic there.

Why it matters after a patch: Exchange setup stops the Exchange services and sets them Disabled while it
runs; a setup that fails or is interrupted leaves them Disabled (Learn, "Fix failed Exchange Server updates":
set them back to Automatic, or run ServiceControl.ps1 AfterPatch from the Exchange bin folder).
Wire shape: the Windows endpoint is standard PowerShell remoting; its enums arrive as ToString + I32 (as
Get-ClusterNode's State does); names and bare integers are read too.

Both reads live here, one source each: Get-Service ("service_start") and sc.exe queryex ("windows_services").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.errors import ParseError
from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult, Command, Endpoint
from dagcheck.sources.base import HostSource, Source
from dagcheck.sources.values import enum_value, required, short_name

CMDLET = "Get-Service"
STATUS_BY_INT = {
    1: "Stopped",
    2: "StartPending",
    3: "StopPending",
    4: "Running",
    5: "ContinuePending",
    6: "PausePending",
    7: "Paused",
}
START_TYPE_BY_INT = {0: "Boot", 1: "System", 2: "Automatic", 3: "Manual", 4: "Disabled"}
# Exchange services whose names do not start with MSExchange (setup installs them; their display names say
# "Microsoft Exchange" or belong to Exchange's search and filtering): never Disabled on a healthy server.
EXCHANGE_OTHER = frozenset({"hostcontrollerservice", "fms", "searchexchangetracing", "mscomplianceaudit"})


def command(server: str) -> Command:
    """Every service of the server (one call; the server is the endpoint's own machine)."""
    return Command.of(CMDLET)


@dataclass(frozen=True)
class ServiceStart:
    """One Windows service of a server: whether it runs and how it starts."""

    server: str
    name: str
    status: str  # Running, Stopped, StartPending ...
    start_type: str  # Automatic, Manual, Disabled, Boot, System

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"

    @property
    def is_exchange(self) -> bool:
        lowered = self.name.lower()
        return lowered.startswith("msexchange") or lowered in EXCHANGE_OTHER


def parse(obj: Any, server: str) -> ServiceStart:
    start_type = enum_value(obj, CMDLET, "StartType", START_TYPE_BY_INT)
    if start_type not in START_TYPE_BY_INT.values():  # a start type judged by name must be one we know
        raise ParseError(CMDLET, "StartType", start_type, f"one of {', '.join(START_TYPE_BY_INT.values())}")
    return ServiceStart(
        short_name(server),
        required(obj, CMDLET, "Name"),
        enum_value(obj, CMDLET, "Status", STATUS_BY_INT),
        start_type,
    )


SOURCE = Source("service_start", Endpoint.WINDOWS, command, parse)


# ---- sc.exe queryex over WinRS: which services run (HOST-004) ---------------------------------------


@dataclass(frozen=True)
class WindowsService:
    server: str
    name: str
    state: str  # RUNNING, STOPPED, START_PENDING ...

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


def parse_sc_query(server: str, stdout: str) -> list[WindowsService]:
    """`sc.exe queryex` blocks: SERVICE_NAME: X ... STATE : 4  RUNNING."""
    services, name = [], None
    for line in stdout.splitlines():
        stripped = line.strip()
        if stripped.startswith("SERVICE_NAME:"):
            name = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("STATE") and name:
            services.append(WindowsService(short_name(server), name, stripped.split(":", 1)[1].split()[-1]))
            name = None
    if not services:  # every Windows server runs services: nothing read means output we do not understand
        expected = "SERVICE_NAME: and STATE : blocks (sc.exe's English labels)"
        raise ParseError("sc.exe queryex", "output", stdout.strip() or None, expected, server)
    return services


def _sc_lines(server: str, expectations: Expectations) -> list[str]:
    return ["sc.exe queryex type= service state= all"]


def _parse_sc(results: list[CmdResult], server: str, expectations: Expectations) -> list[WindowsService]:
    return parse_sc_query(server, results[0].stdout)


SC_QUERY_SOURCE = HostSource("windows_services", _sc_lines, _parse_sc)
