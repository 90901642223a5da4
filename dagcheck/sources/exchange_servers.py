"""Every Exchange server of the organisation: `Get-ExchangeServer` without -Identity.

Read by discovery (dagcheck/discover.py) to list each server with its FQDN, AD site, roles and build.
Shape: Microsoft.Exchange.Data.Directory.Management.ExchangeServer (EXCHANGE-NOTES 4.10; CSS-Exchange
HealthChecker's GetExchangeServer.xml: Name, Fqdn, Domain, Site as an ADObjectId, ServerRole,
IsEdgeServer, IsMailboxServer, AdminDisplayVersion). Learn: Get-ExchangeServer
(https://learn.microsoft.com/powershell/module/exchange/get-exchangeserver) lists every Exchange
server in the organisation, Edge Transport servers included once subscribed (EdgeSync).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources import values
from dagcheck.sources.base import Source

CMDLET = "Get-ExchangeServer"
COMMAND = Command.of(CMDLET)


@dataclass(frozen=True)
class ExchangeServerEntry:
    """One server as Active Directory lists it."""

    name: str  # short, lower-case (the inventory's server name)
    fqdn: str
    site: str  # AD site name ('' when AD gives none, e.g. an Edge server)
    version: tuple[int, int, int, int]  # AdminDisplayVersion: the CU level (an SU shows in ExSetup.exe only)
    roles: str  # ServerRole's string form, e.g. "Mailbox" or "Edge"
    is_edge: bool
    is_mailbox: bool

    @property
    def build(self) -> str:
        return ".".join(map(str, self.version))


def parse(obj: Any) -> ExchangeServerEntry:
    """Both shapes: the live object (Site a bag with Name, ServerRole an enum) and the remote-session one
    (Site 'contoso.com/Configuration/Sites/Site-A', ServerRole its ToString)."""
    name = values.short_name(values.required(obj, CMDLET, "Name"))
    return ExchangeServerEntry(
        name=name,
        fqdn=values.required(obj, CMDLET, "Fqdn").lower(),
        site="" if values.prop(obj, "Site") in (None, "") else values.ad_name(values.prop(obj, "Site"), CMDLET, "Site"),
        version=values.server_version(obj, CMDLET),
        roles=values.enum_name(values.prop(obj, "ServerRole")) or "",
        is_edge=values.boolean(obj, CMDLET, "IsEdgeServer", False),
        is_mailbox=values.boolean(obj, CMDLET, "IsMailboxServer", False),
    )


# ---- one server, for the health checks: -Identity <server> ---------------------------------------------


@dataclass(frozen=True)
class ExchangeServer:
    name: str
    fqdn: str
    site: str
    admin_display_version: tuple[int, int, int, int]

    @property
    def key(self) -> str:
        return self.name


def parse_exchange_server(obj: Any) -> ExchangeServer:
    return ExchangeServer(
        values.short_name(values.required(obj, CMDLET, "Name")),
        values.required(obj, CMDLET, "Fqdn"),
        values.ad_name(values.prop(obj, "Site"), CMDLET, "Site"),
        values.server_version(obj, CMDLET),
    )


def server_command(server: str) -> Command:
    return Command.of(CMDLET, Identity=server)


SOURCE = Source("exchange_server", Endpoint.EXCHANGE, server_command, lambda obj, server: parse_exchange_server(obj))
