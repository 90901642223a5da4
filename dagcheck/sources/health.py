"""Managed Availability: every monitor of a server with its health set and alert value (Get-ServerHealth).

Why Get-ServerHealth and not Get-HealthReport: Get-HealthReport rolls the monitors up to one row per
health set (its AlertValue the "worst of" its monitors) and so cannot say which monitor failed;
Get-ServerHealth returns one MonitorHealthEntry per monitor and target resource, each carrying its
HealthSetName, so one call per server names both the health set and the monitor. Learn, "Manage health
sets and server health in Exchange Server" (Exchange/ExchangeServer/high-availability/managed-availability/
health-sets.md): `Get-ServerHealth -Identity <ServerName> | Format-Table Server,CurrentHealthSetState,Name,
HealthSetName,AlertValue,HealthGroupName`, and "the health of a [health set] is reported by using the
'worst of' monitors in the health set". AlertValue values (Learn, Get-ServerHealth): Degraded, Unhealthy,
Repairing, Disabled, Unavailable, UnInitialized (and Healthy). TargetResource and LastTransitionTime are
properties of the same MonitorHealthEntry type.

Wire shape guessed (no capture of Get-ServerHealth through a remote session is at hand; see
docs/remote-session-shapes.md): AlertValue and CurrentHealthSetState as top-level enums (ToString + I32)
or their names, the integers in the order Unknown, Healthy, Degraded, Unhealthy, Repairing, Disabled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from dagcheck.errors import ParseError
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import enum_value, prop, required, short_name, text

CMDLET = "Get-ServerHealth"
ALERT_BY_INT = {0: "Unknown", 1: "Healthy", 2: "Degraded", 3: "Unhealthy", 4: "Repairing", 5: "Disabled"}


def command(server: str) -> Command:
    """One call per server: every monitor of every health set."""
    return Command.of(CMDLET, Identity=server)


@dataclass(frozen=True)
class MonitorHealth:
    """One Managed Availability monitor of a server, as Get-ServerHealth reports it."""

    server: str
    health_set: str
    monitor: str
    target_resource: str
    alert_value: str  # Unknown, Healthy, Degraded, Unhealthy, Repairing, Disabled (Unavailable, UnInitialized)
    last_transition: dt.datetime | None

    @property
    def key(self) -> str:
        target = f"\\{self.target_resource}" if self.target_resource else ""
        return f"{self.server}:{self.health_set}\\{self.monitor}{target}"

    def describe(self) -> str:
        since = f" since {self.last_transition.isoformat(timespec='seconds')}" if self.last_transition else ""
        target = f" (target {self.target_resource})" if self.target_resource else ""
        return f"health set {self.health_set} is {self.alert_value}: monitor {self.monitor}{target}{since}"


def _time(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ParseError(CMDLET, "LastTransitionTime", value, "a DateTime") from None


def parse(obj: Any, server: str) -> MonitorHealth:
    return MonitorHealth(
        short_name(prop(obj, "Server") or server),
        required(obj, CMDLET, "HealthSetName"),
        required(obj, CMDLET, "Name"),
        text(prop(obj, "TargetResource")) or "",
        enum_value(obj, CMDLET, "AlertValue", ALERT_BY_INT),
        _time(prop(obj, "LastTransitionTime")),
    )


SOURCE = Source("server_health", Endpoint.EXCHANGE, command, parse)
