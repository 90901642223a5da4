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

from dagcheck import model
from dagcheck.remote.base import Command

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
    name = model.short_name(model.required(obj, CMDLET, "Name"))
    return ExchangeServerEntry(
        name=name,
        fqdn=model.required(obj, CMDLET, "Fqdn").lower(),
        site="" if model.prop(obj, "Site") in (None, "") else model.ad_name(model.prop(obj, "Site"), CMDLET, "Site"),
        version=model.server_version(obj, CMDLET),
        roles=model.enum_name(model.prop(obj, "ServerRole")) or "",
        is_edge=model.boolean(obj, CMDLET, "IsEdgeServer", False),
        is_mailbox=model.boolean(obj, CMDLET, "IsMailboxServer", False),
    )
