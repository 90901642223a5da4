"""Every database copy a server hosts and its health: `Get-MailboxDatabaseCopyStatus -Server <server>`.

Status, queues, content index and activation state per copy (EXCHANGE-NOTES 4.2; enum integers as a
calling shell without Exchange's types sees them, §5). Lagged copies are told by ReplayLagStatus.
Learn: https://learn.microsoft.com/powershell/module/exchange/get-mailboxdatabasecopystatus
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.errors import ParseError
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import boolean, enum_value, integer, prop, required, short_name, text

# Integers seen for enum values when the calling shell does not know the enum (EXCHANGE-NOTES §5).
CONTENT_INDEX_BY_INT = {
    0: "Unknown",
    1: "Healthy",
    2: "Crawling",
    3: "Failed",
    4: "Seeding",
    5: "FailedAndSuspended",
    6: "Suspended",
    7: "Disabled",
    8: "AutoSuspended",
    9: "HealthyAndUpgrading",
    11: "NotApplicable",
}
COPY_STATUS_BY_INT = {
    0: "Unknown",
    3: "Failed",
    4: "Seeding",
    5: "Suspended",
    6: "Healthy",
    7: "ServiceDown",
    8: "Initializing",
    9: "Resynchronizing",
    11: "Mounted",
    12: "Dismounted",
    13: "Mounting",
    14: "Dismounting",
    15: "DisconnectedAndHealthy",
    16: "FailedAndSuspended",
    17: "DisconnectedAndResynchronizing",
    18: "NonExchangeReplication",
    19: "SeedingSource",
    20: "Misconfigured",
}


@dataclass(frozen=True)
class DatabaseCopyStatus:
    database: str
    server: str
    status: str
    active: bool
    activation_preference: int | None
    copy_queue: int
    replay_queue: int
    content_index: str
    activation_suspended: bool
    lagged: bool
    error_message: str | None

    @property
    def key(self) -> str:
        return f"{self.database}\\{self.server}"


GCOPY = "Get-MailboxDatabaseCopyStatus"


def _lagged(obj: Any) -> bool:
    """ReplayLagStatus: 'Enabled:True; PlayDownReason:None; ...' (its ToString, both shapes), or a bag
    with Enabled (guessed: a rebuilt ReplayLagStatus object); absent means not lagged."""
    value = prop(obj, "ReplayLagStatus")
    if value is None:
        return False
    if hasattr(value, "PSObject") and prop(value, "Enabled") is not None:
        return boolean(value, GCOPY, "Enabled")
    flat = str(value).replace(" ", "").lower()
    if flat.startswith(("enabled:true", "enabled:false")):
        return flat.startswith("enabled:true")
    raise ParseError(GCOPY, "ReplayLagStatus", value, "'Enabled:True; ...' or 'Enabled:False; ...'")


def parse_copy_status(obj: Any) -> DatabaseCopyStatus:
    name = str(prop(obj, "Name") or prop(obj, "Identity") or "")
    db, _, server = name.partition("\\")
    preference = prop(obj, "ActivationPreference")
    return DatabaseCopyStatus(
        database=str(prop(obj, "DatabaseName") or db) or required(obj, GCOPY, "DatabaseName"),
        server=short_name(prop(obj, "MailboxServer") or server) or short_name(required(obj, GCOPY, "MailboxServer")),
        status=enum_value(obj, GCOPY, "Status", COPY_STATUS_BY_INT),
        active=boolean(obj, GCOPY, "ActiveCopy", False),
        activation_preference=None if preference is None else integer(obj, GCOPY, "ActivationPreference"),
        copy_queue=integer(obj, GCOPY, "CopyQueueLength"),
        replay_queue=integer(obj, GCOPY, "ReplayQueueLength"),
        content_index=enum_value(obj, GCOPY, "ContentIndexState", CONTENT_INDEX_BY_INT, default="Unknown"),
        activation_suspended=boolean(obj, GCOPY, "ActivationSuspended", False),
        lagged=_lagged(obj),
        error_message=text(prop(obj, "ErrorMessage")),
    )


def command(server: str) -> Command:
    return Command.of(GCOPY, Server=server)


SOURCE = Source("copies", Endpoint.EXCHANGE, command, lambda obj, server: parse_copy_status(obj))
