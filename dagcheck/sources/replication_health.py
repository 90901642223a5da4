"""The replication subsystem's own checks: `Test-ReplicationHealth -Identity <server>`.

Each result is a ReplicationCheckResult whose ToString is localized (EXCHANGE-NOTES "Lessons" 8): read
through values.monitoring_result, English and German mapped. Learn:
https://learn.microsoft.com/powershell/module/exchange/test-replicationhealth
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import monitoring_result, prop, required, short_name, text

# Localized ToString of ReplicationCheckResult (English and German seen in the field; Checkmk).
REPLICATION_RESULTS = {
    "passed": "Passed",
    "prüfung bestanden": "Passed",
    "*failed*": "Failed",
    "failed": "Failed",
    "*fehler*": "Failed",
    "fehler": "Failed",
    "*warning*": "Warning",
    "warning": "Warning",
    "*warnung*": "Warning",
    "warnung": "Warning",
    "undefined": "Undefined",
}


@dataclass(frozen=True)
class ReplicationCheck:
    server: str
    check: str
    result: str
    error: str | None

    @property
    def key(self) -> str:
        return f"{self.server}:{self.check}"


def parse_replication_check(obj: Any) -> ReplicationCheck:
    result = monitoring_result(obj, REPLICATION_RESULTS)
    return ReplicationCheck(
        short_name(required(obj, "Test-ReplicationHealth", "Server")),
        required(obj, "Test-ReplicationHealth", "Check"),
        result,
        text(prop(obj, "Error")),
    )


def command(server: str) -> Command:
    return Command.of("Test-ReplicationHealth", Identity=server)


SOURCE = Source("replication", Endpoint.EXCHANGE, command, lambda obj, server: parse_replication_check(obj))
