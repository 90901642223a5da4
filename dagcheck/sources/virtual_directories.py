"""The Exchange virtual directories of both web sites: the eight `Get-*VirtualDirectory -ShowMailboxVirtualDirectories`.

Extended Protection as the cmdlets report it (read from IIS, so empty with -ADPropertiesOnly), and the
URLs and authentication methods a CU can quietly reset (the configuration baseline, dagcheck/drift.py).
The cmdlets do not cover every IIS location: dagcheck/sources/iis_config.py reads applicationHost.config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.errors import ParseError
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import enum_names, enum_value, prop, required, short_name, text

# The Get-*VirtualDirectory cmdlets whose Extended Protection settings are checked.
VDIR_CMDLETS = (
    "Get-OwaVirtualDirectory",
    "Get-EcpVirtualDirectory",
    "Get-WebServicesVirtualDirectory",
    "Get-AutodiscoverVirtualDirectory",
    "Get-MapiVirtualDirectory",
    "Get-OabVirtualDirectory",
    "Get-ActiveSyncVirtualDirectory",
    "Get-PowerShellVirtualDirectory",
)


@dataclass(frozen=True)
class VirtualDirectory:
    server: str
    name: str
    token_checking: str | None
    # What a CU can quietly reset (the configuration baseline compares them across maintenance).
    internal_url: str | None = None
    external_url: str | None = None
    internal_auth: tuple[str, ...] = ()
    external_auth: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


TOKEN_CHECKING_BY_INT = {0: "None", 1: "Allow", 2: "Require"}


def parse_virtual_directory(obj: Any, server: str) -> VirtualDirectory:
    cmdlet = "Get-*VirtualDirectory"
    name = required(obj, cmdlet, "Name")
    # Empty (not read from IIS, e.g. -ADPropertiesOnly) stays None: the rules report it as unknown.
    token = (
        None
        if prop(obj, "ExtendedProtectionTokenChecking") is None
        else enum_value(obj, cmdlet, "ExtendedProtectionTokenChecking", TOKEN_CHECKING_BY_INT)
    )
    if token is not None and token not in TOKEN_CHECKING_BY_INT.values():
        raise ParseError(
            cmdlet,
            f"{name}.ExtendedProtectionTokenChecking",
            prop(obj, "ExtendedProtectionTokenChecking"),
            "None, Allow or Require",
        )
    return VirtualDirectory(
        short_name(server),
        name,
        token,
        text(prop(obj, "InternalUrl")),
        text(prop(obj, "ExternalUrl")),
        enum_names(obj, cmdlet, "InternalAuthenticationMethods", f"{name}.InternalAuthenticationMethods"),
        enum_names(obj, cmdlet, "ExternalAuthenticationMethods", f"{name}.ExternalAuthenticationMethods"),
    )


def commands(server: str) -> list[Command]:
    return [Command.of(c, Server=server, ShowMailboxVirtualDirectories=True) for c in VDIR_CMDLETS]


SOURCE = Source("vdirs", Endpoint.EXCHANGE, commands, parse_virtual_directory)
