"""A server's receive connectors: `Get-ReceiveConnector -Server <server>`.

Read for the configuration baseline (dagcheck/drift.py): bindings, remote IP ranges, authentication and
permission groups are what a CU or a repair can quietly reset.
Learn: https://learn.microsoft.com/powershell/module/exchange/get-receiveconnector
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import boolean, enum_value, flag_names, prop, required, short_name, strings, text


@dataclass(frozen=True)
class ReceiveConnector:
    """Get-ReceiveConnector -Server: what a CU or a repair must leave as the administrator set it."""

    server: str
    name: str
    transport_role: str  # FrontendTransport (port 25, 587, 717) or HubTransport (2525, 465)
    bindings: tuple[str, ...]  # IPBinding ToString: '0.0.0.0:25', '[::]:25'
    remote_ip_ranges: tuple[str, ...]
    auth_mechanism: tuple[str, ...]
    permission_groups: tuple[str, ...]
    enabled: bool
    fqdn: str | None
    tls_certificate_name: str | None = None  # '<I>issuer<S>subject' of the certificate it offers for STARTTLS

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


def parse_receive_connector(obj: Any, server: str) -> ReceiveConnector:
    cmdlet = "Get-ReceiveConnector"
    name = required(obj, cmdlet, "Name")
    return ReceiveConnector(
        short_name(server),
        name,
        enum_value(obj, cmdlet, "TransportRole", default="HubTransport"),
        tuple(sorted(strings(prop(obj, "Bindings")))),
        tuple(sorted(strings(prop(obj, "RemoteIPRanges")))),
        flag_names(obj, cmdlet, "AuthMechanism", f"{name}.AuthMechanism"),
        flag_names(obj, cmdlet, "PermissionGroups", f"{name}.PermissionGroups"),
        boolean(obj, cmdlet, "Enabled", True),
        text(prop(obj, "Fqdn")),
        text(prop(obj, "TlsCertificateName")) or None,
    )


def command(server: str) -> Command:
    return Command.of("Get-ReceiveConnector", Server=server)


SOURCE = Source("receive_connectors", Endpoint.EXCHANGE, command, parse_receive_connector)
