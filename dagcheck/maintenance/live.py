"""Fresh reads for transitions: every call goes to the server (a transition waits for state to change,
so it must not read the memoized snapshots the checks use)."""

from __future__ import annotations

import itertools
from typing import Any

from dagcheck.collect import Snapshot, SourceFailed
from dagcheck.inventory import Expectations
from dagcheck.remote.base import Command, Endpoint, Transport


class Live:
    def __init__(self, transport: Transport, expectations: Expectations) -> None:
        self.transport = transport
        self.expectations = expectations
        self._counter = itertools.count()

    def read(self, server: str, source: str) -> tuple[Any, ...]:
        """A fresh read; a failure raises the RemoteError itself (server, cmdlet, reason)."""
        try:
            return Snapshot(server, f"live-{next(self._counter)}", self.transport, self.expectations).get(source)
        except SourceFailed as exc:
            raise exc.error from None

    def one(self, server: str, source: str) -> Any:
        return self.read(server, source)[0]

    def run(self, server: str, endpoint: Endpoint, command: Command) -> list[Any]:
        return self.transport.run(server, endpoint, command)
