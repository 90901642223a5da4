"""Outlook Anywhere (Get-OutlookAnywhere): the Rpc virtual directory's SSL offloading.

Extended Protection binds authentication to the TLS channel the client opened with the server, so it cannot
work when TLS ends before the server: Outlook Anywhere must have SSLOffloading $false wherever Extended
Protection is on (Learn, "Configure Windows Extended Protection in Exchange Server", prerequisites:
https://learn.microsoft.com/exchange/plan-and-deploy/post-installation-tasks/security-best-practices/exchange-extended-protection;
CSS-Exchange issue #2033, where ExchangeExtendedProtectionManagement.ps1 learnt to refuse it).
Property names are Learn's (Set-OutlookAnywhere -SSLOffloading; Get-OutlookAnywhere output); the
type name of the object over remoting (ADRpcHttpVirtualDirectory) is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import boolean, required, short_name

CMDLET = "Get-OutlookAnywhere"


@dataclass(frozen=True)
class OutlookAnywhere:
    server: str
    name: str  # 'Rpc (Default Web Site)'
    ssl_offloading: bool

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


def command(server: str) -> Command:
    return Command.of(CMDLET, Server=server)


def parse(obj: Any, server: str) -> OutlookAnywhere:
    return OutlookAnywhere(short_name(server), required(obj, CMDLET, "Name"), boolean(obj, CMDLET, "SSLOffloading"))


SOURCE = Source("outlook_anywhere", Endpoint.EXCHANGE, command, parse)
