"""What every lab cmdlet shares: the registry, the dispatcher, parameter binding and common builders.

One function per cmdlet lives in the module of its Exchange area (servers, dag, databases,
components, transport, client_access, monitoring, cluster, host); each registers itself with
@cmdlet under the real cmdlet's name and parameter names. Every result is derived from the state
(never canned) and built with the shapes in dagcheck.lab.psobjects. Endpoints: "exchange" is a
server's /PowerShell (Microsoft.Exchange configuration), "windows" its /wsman default configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagcheck.lab import psobjects as ps
from dagcheck.lab.errors import (
    LabCmdletError,
    command_not_found,
    invalid_value,
    missing_parameter,
    object_not_found,
    parameter_not_found,
)
from dagcheck.lab.objects import LabDatabase, LabServer
from dagcheck.lab.state import TICK_SECONDS, Organization

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
# By (endpoint, lower-case name): a name both endpoints know (Get-Command) has one function per endpoint.
BY_ENDPOINT: dict[tuple[str, str], Cmdlet] = {}


def cmdlet(name: str, *parameters: str, endpoint: str = EXCHANGE, changes_state: bool = False):
    def register(fn: Callable[[Call], list[Any]]) -> Callable[[Call], list[Any]]:
        spec = Cmdlet(name, endpoint, frozenset(parameters), fn, changes_state)
        REGISTRY.setdefault(name.lower(), spec)
        BY_ENDPOINT[(endpoint, name.lower())] = spec
        return fn

    return register


def invoke(org: Organization, endpoint: str, server_name: str, name: str, params: dict[str, Any]) -> list[Any]:
    """Run one cmdlet as the server's endpoint would; raise LabCmdletError for what PowerShell rejects."""
    spec = BY_ENDPOINT.get((endpoint, name.lower()))
    if spec is None or spec.endpoint != endpoint or org.faults_matching("cmdlet_missing", server_name, name):
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
        for f in org.faults_matching("cmdlet_error", server_name, spec.name):
            raise LabCmdletError(
                f.get("value")
                or "The Microsoft Exchange Replication service may not be running on server "
                f"{server_name}. Specific RPC error message: Error 0x6ba (The RPC server is unavailable).",
                "NotSpecified",
                f"[Server={server_name.upper()}] {spec.name.replace('-', '')}Exception,{spec.name}",
                "Microsoft.Exchange.Cluster.Replay.ReplayServiceDownException",
                activity=spec.name,
            )
        out = spec.fn(Call(org, org.server(server_name), spec.name, bound))
        if spec.endpoint == EXCHANGE and org.object_shape == "remote":
            # What a client of /PowerShell without Exchange's assemblies receives (lab option object_shape).
            out = [ps.remote_shape(o) for o in out]
        for f in org.faults_matching("malformed_value", server_name, spec.name):
            # A value the checker cannot know (another build, another language): it must say so, not guess.
            out = [ps.with_property(o, str(f["property"]), f.get("value")) for o in out]
        return out


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
    return sum(float(f.get("seconds", 5)) for f in org.faults_matching("slow_cmdlet", server_name, name))


# ---- shared builders ------------------------------------------------------------------------


def server_id(s: LabServer) -> Any:
    return ps.ad_object_id(s.name.upper(), s.dn, s.guid)


def server_ids(servers: list[LabServer]) -> Any:
    return ps.typed_list(
        [server_id(m) for m in servers],
        [
            f"{ps.EX}.Data.MultiValuedProperty`1[[{ps.EX}.Data.Directory.ADObjectId, Microsoft.Exchange.Data.Directory, "
            "Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
            "System.Object",
        ],
    )


def version(v: tuple[int, int, int, int]) -> Any:
    return ps.server_version(*v)


def lookup_server(call: Call, identity: Any) -> LabServer:
    try:
        return call.org.server(str(identity))
    except KeyError:
        raise object_not_found(call.cmdlet, "ManagementObjectNotFoundException", identity) from None


def target_servers(call: Call, key: str = "Identity") -> list[LabServer]:
    if call.get(key) not in (None, ""):
        return [lookup_server(call, call.get(key))]
    return list(call.org.servers.values())


def lookup_db(call: Call, identity: Any) -> LabDatabase:
    db = call.org.databases.get(str(identity).lower())
    if db is None:
        raise object_not_found(call.cmdlet, "ManagementObjectNotFoundException", identity)
    return db


def enum_param(call: Call, name: str, allowed: list[str]) -> str | None:
    value = call.get(name)
    if value is None:
        return None
    match = next((a for a in allowed if a.lower() == str(value).lower()), None)
    if match is None:
        raise invalid_value(call.cmdlet, name, value, allowed)
    return match


def bool_param(call: Call, name: str) -> bool | None:
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
