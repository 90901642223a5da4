"""A transport server's queues: `Get-Queue -Server <server>`.

Read for "local queues drained" before maintenance; the queue's kind (Submission, Poison, Unreachable, Shadow)
comes from its identity, which is never localized (EXCHANGE-NOTES "Lessons" 5).
Learn: https://learn.microsoft.com/powershell/module/exchange/get-queue
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import enum_value, integer, prop, required, short_name, text

QUEUE_STATUS_BY_INT = {0: "None", 1: "Active", 2: "Ready", 3: "Retry", 4: "Suspended", 5: "Connecting"}


@dataclass(frozen=True)
class QueueInfo:
    identity: str
    server: str
    delivery_type: str
    next_hop: str
    status: str
    message_count: int
    last_error: str | None

    @property
    def kind(self) -> str:
        """Submission, Poison, Unreachable, Shadow or Delivery, from the identity (never localized)."""
        parts = self.identity.split("\\")
        if len(parts) >= 2 and parts[1] in ("Submission", "Poison", "Unreachable", "Shadow"):
            return parts[1]
        return "Shadow" if self.delivery_type == "ShadowRedundancy" else "Delivery"

    @property
    def key(self) -> str:
        return self.identity


def parse_queue(obj: Any, server: str) -> QueueInfo:
    identity = str(prop(obj, "QueueIdentity") or prop(obj, "Identity") or "") or required(obj, "Get-Queue", "Identity")
    return QueueInfo(
        identity=identity,
        server=short_name(server),
        delivery_type=enum_value(obj, "Get-Queue", "DeliveryType"),
        next_hop=str(prop(obj, "NextHopDomain") or ""),  # empty is a real value (Submission on some builds)
        status=enum_value(obj, "Get-Queue", "Status", QUEUE_STATUS_BY_INT),
        message_count=integer(obj, "Get-Queue", "MessageCount"),
        last_error=text(prop(obj, "LastError")),
    )


def command(server: str) -> Command:
    return Command.of("Get-Queue", Server=server)


SOURCE = Source("queues", Endpoint.EXCHANGE, command, parse_queue)
