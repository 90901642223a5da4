"""Whether each database answers a MAPI logon: `Test-MAPIConnectivity -Server <server>`.

Its Result is localized like Test-ReplicationHealth's (EXCHANGE-NOTES "Lessons" 8): read through
values.monitoring_result. Learn: https://learn.microsoft.com/powershell/module/exchange/test-mapiconnectivity
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import monitoring_result, prop, required, short_name, text


@dataclass(frozen=True)
class MapiResult:
    server: str
    database: str
    result: str  # Success, Failure, ...
    error: str | None

    @property
    def key(self) -> str:
        return f"{self.database}@{self.server}"


MAPI_RESULTS = {
    "success": "Success",
    "erfolgreich": "Success",
    "*failure*": "Failure",
    "failure": "Failure",
    "*fehler*": "Failure",
    "mdbmoved": "MdbMoved",
    "storenotrunning": "Failure",
}


def parse_mapi(obj: Any) -> MapiResult:
    cmdlet = "Test-MAPIConnectivity"
    return MapiResult(
        short_name(required(obj, cmdlet, "Server")),
        required(obj, cmdlet, "Database"),
        monitoring_result(obj, MAPI_RESULTS, cmdlet),
        text(prop(obj, "Error")),
    )


def command(server: str) -> Command:
    return Command.of("Test-MAPIConnectivity", Server=server)


SOURCE = Source("mapi", Endpoint.EXCHANGE, command, lambda obj, server: parse_mapi(obj))
