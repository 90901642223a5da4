"""A member's clock: Get-Date on its Windows endpoint, timed from the jump host.

Kerberos refuses tickets beyond its skew tolerance (5 minutes by default; Learn, "Maximum tolerance for
computer clock synchronization"), and dagcheck's own maintenance lease orders component-state timestamps
written by different members. The reading happened somewhere between the jump host's clock before the call
and after it: the offset is measured against the midpoint, give or take half the round trip.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from dagcheck.errors import ParseError
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources import ProbeContext
from dagcheck.sources.base import ProbeSource
from dagcheck.sources.values import short_name

COMMAND = Command.of("Get-Date")


@dataclass(frozen=True)
class ClockReading:
    """The member's time, and the jump host's before and after asking (None when replayed from a save)."""

    server: str
    server_time: dt.datetime
    asked_at: dt.datetime | None
    answered_at: dt.datetime | None

    @property
    def key(self) -> str:
        return self.server

    @property
    def offset(self) -> float | None:
        """Seconds the member is ahead of the jump host (negative: behind), against the call's midpoint."""
        if self.asked_at is None or self.answered_at is None:
            return None
        middle = self.asked_at + (self.answered_at - self.asked_at) / 2
        return (self.server_time - middle).total_seconds()

    @property
    def uncertainty(self) -> float:
        """Half the round trip: how far the reading can be from the midpoint."""
        if self.asked_at is None or self.answered_at is None:
            return 0.0
        return (self.answered_at - self.asked_at).total_seconds() / 2


def server_time(obj: Any) -> dt.datetime:
    """Get-Date's DateTime (CLIXML <DT> carries the offset; a time without one is read as UTC, guessed)."""
    value = obj if isinstance(obj, dt.datetime) else getattr(obj, "DateTime", None)
    if not isinstance(value, dt.datetime):
        raise ParseError("Get-Date", "DateTime", obj, "a DateTime")
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def collect(ctx: ProbeContext) -> list[ClockReading]:
    before = dt.datetime.now(dt.UTC)
    objects = ctx.run(Endpoint.WINDOWS, COMMAND)
    after = dt.datetime.now(dt.UTC)
    if len(objects) != 1:
        raise ParseError("Get-Date", "output", f"{len(objects)} objects", "one DateTime")
    when = server_time(objects[0])
    return [ClockReading(short_name(ctx.server), when, before if ctx.live else None, after if ctx.live else None)]


def _lines(server: str) -> list[str]:
    return [COMMAND.render()]


# The member's clock, timed from the jump host (Get-Date on the Windows endpoint).
SOURCE = ProbeSource("clock", _lines, collect)
