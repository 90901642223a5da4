"""Fresh reads for transitions: every call goes to the server (a transition waits for state to change,
so it must not read the memoized snapshots the checks use).

Every call is bounded by the transport (one operation timeout for a read, a few for a change) and,
with a progress callback, shown while it waits: a stalled Get-Queue says so every few seconds instead
of holding the run silently.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dagcheck.collect import Snapshot, SourceFailed, describe
from dagcheck.inventory import Expectations
from dagcheck.remote.base import Command, Endpoint, Transport
from dagcheck.sources.registry import SOURCES

SHOW_AFTER = 3.0  # seconds before a call in flight is first shown
SHOW_EVERY = 10.0
# Tests set a shorter first showing (at least 0.1 s), so that the lab's slow calls they watch need not last 3 s.
SHOW_AFTER_ENV = "DAGCHECK_SHOW_SLOW_CALLS_AFTER"


def show_after() -> float:
    try:
        return max(0.1, float(os.environ.get(SHOW_AFTER_ENV, SHOW_AFTER)))
    except ValueError:
        return SHOW_AFTER


class Live:
    def __init__(self, transport: Transport, expectations: Expectations, progress: Callable[[str], None] | None = None) -> None:
        self.transport = transport
        self.expectations = expectations
        self.progress = progress
        self._counter = itertools.count()

    def read(self, server: str, source: str) -> tuple[Any, ...]:
        """A fresh read; a failure raises the RemoteError itself (server, cmdlet, reason)."""
        try:
            # what Snapshot sends: a DAG-wide source read here (no DAG-wide sharing) asks for every DAG
            dag_wide = source in SOURCES and SOURCES[source].dag_wide
            lines = (
                [c.render() for c in SOURCES[source].commands(None)] if dag_wide else describe(source, server, self.expectations)
            )
            label = "; ".join(lines)
            with self._watch(server, label, is_read=True):
                return Snapshot(server, f"live-{next(self._counter)}", self.transport, self.expectations).get(source)
        except SourceFailed as exc:
            raise exc.error from None

    def one(self, server: str, source: str) -> Any:
        return self.read(server, source)[0]

    def run(self, server: str, endpoint: Endpoint, command: Command) -> list[Any]:
        with self._watch(server, command.render(), is_read=command.is_read):
            return self.transport.run(server, endpoint, command)

    def _bound(self, server: str, is_read: bool) -> float | None:
        """The transport's own bound for the call (PsrpTransport), for the progress line."""
        return self.transport.call_bound(server, is_read)

    @contextmanager
    def _watch(self, server: str, what: str, is_read: bool) -> Iterator[None]:
        if self.progress is None:
            yield
            return
        progress = self.progress
        bound = self._bound(server, is_read)
        started = time.monotonic()
        done = threading.Event()

        def tick() -> None:
            wait = show_after()
            while not done.wait(wait):
                elapsed = time.monotonic() - started
                left = f", gives up in {max(0.0, bound - elapsed):.0f} s" if bound else ""
                progress(f"  still waiting for {server}: {what} ({elapsed:.0f} s{left})")
                wait = SHOW_EVERY

        ticker = threading.Thread(target=tick, name="dagcheck-live-watch", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
