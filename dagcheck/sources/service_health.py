"""Whether each server role's required services run: `Test-ServiceHealth -Server <server>`.

One object per role (its Role string localized, EXCHANGE-NOTES "Lessons" 8) with RequiredServicesRunning
and ServicesNotRunning. Learn: https://learn.microsoft.com/powershell/module/exchange/test-servicehealth
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import boolean, prop, required, short_name, strings


@dataclass(frozen=True)
class ServiceHealth:
    server: str
    role: str
    required_services_running: bool
    services_not_running: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.server}:{self.role}"


def parse_service_health(obj: Any, server: str) -> ServiceHealth:
    return ServiceHealth(
        short_name(server),
        required(obj, "Test-ServiceHealth", "Role"),
        boolean(obj, "Test-ServiceHealth", "RequiredServicesRunning"),
        strings(prop(obj, "ServicesNotRunning")),
    )


def command(server: str) -> Command:
    return Command.of("Test-ServiceHealth", Server=server)


SOURCE = Source("services", Endpoint.EXCHANGE, command, parse_service_health)
