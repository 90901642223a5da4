"""Every server's Autodiscover service connection point: `Get-ClientAccessService` without -Identity.

AutoDiscoverServiceInternalUri is the SCP's URL and AutoDiscoverSiteScope the AD sites it serves
(EXCHANGE-NOTES 4.9; Learn: https://learn.microsoft.com/powershell/module/exchange/get-clientaccessservice).
Discovery turns them into the per-site Autodiscover expectation as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources import values
from dagcheck.sources.base import Source

CMDLET = "Get-ClientAccessService"
COMMAND = Command.of(CMDLET)


@dataclass(frozen=True)
class ScpEntry:
    name: str
    uri: str | None  # None: the server publishes no SCP URI
    site_scope: tuple[str, ...]


def parse(obj: Any) -> ScpEntry:
    uri = values.text(values.prop(obj, "AutoDiscoverServiceInternalUri"))
    return ScpEntry(
        name=values.short_name(values.required(obj, CMDLET, "Name")),
        uri=uri or None,
        site_scope=values.strings(values.prop(obj, "AutoDiscoverSiteScope")),
    )


# ---- one server's SCP, for the health checks: -Identity <server> ---------------------------------------


@dataclass(frozen=True)
class ClientAccess:
    server: str
    internal_uri: str | None
    site_scope: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.server


def parse_client_access(obj: Any) -> ClientAccess:
    # AutoDiscoverServiceInternalUri: System.Uri, a string in both shapes; empty (no SCP URI) stays None.
    return ClientAccess(
        values.short_name(values.required(obj, CMDLET, "Name")),
        values.text(values.prop(obj, "AutoDiscoverServiceInternalUri")),
        values.strings(values.prop(obj, "AutoDiscoverSiteScope")),
    )


def server_command(server: str) -> Command:
    return Command.of(CMDLET, Identity=server)


SOURCE = Source("client_access", Endpoint.EXCHANGE, server_command, lambda obj, server: parse_client_access(obj))
