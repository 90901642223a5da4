"""One run's wiring: the inventory, the lab when the inventory has one, the transport, the snapshots."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

from dagcheck.catalogue import CheckSpec
from dagcheck.collect import Collector, describe
from dagcheck.errors import RemoteError
from dagcheck.inventory import Inventory, Server
from dagcheck.remote.base import Transcript, Transport
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.registry import TransportSettings, transport_for
from dagcheck.sources.registry import HOST_SOURCES, PROBE_SOURCES, SOURCES

log = logging.getLogger(__name__)


PER_SERVER = "*"


@dataclass(frozen=True)
class Target:
    """One parametrized instance of a check: a server and the key of an object its source returned."""

    server: str
    source: str
    key: str | None  # None: the whole source failed for this server (error holds why)
    label: str
    error: str | None = None
    phase: str = "health"
    check: str = ""  # the id of the check it parametrizes (catalogue.CATALOGUE), so fixtures need not ask pytest


class DagcheckSession:
    def __init__(
        self,
        inventory: Inventory,
        servers: list[str] | None = None,
        dag: str | None = None,
        phase: str = "health",
        save: str | None = None,
        replay: str | None = None,
    ) -> None:
        self.inventory = inventory
        self.phase = phase
        self.save = save
        self.replay = replay
        self.transcript = Transcript()
        self.lab: Any = None  # the embedded lab (dagcheck.lab.embedded.EmbeddedLab) when the inventory has one
        self.transport: Transport = self._make_transport()
        dags = {m.lower(): (d.name, list(d.members)) for d in inventory.dags for m in d.members}
        self.collector = Collector(self.transport, expectations=inventory.expectations, dags=dags, lanes=self._lanes)
        self.servers = self._scope(servers, dag)
        # The transport proves a refused account only on servers of this run (issue 24, item 2).
        self.transport.limit_to({s.name.lower() for s in self.servers})
        self._prefetched: set[str] = set()

    def _lanes(self, name: str) -> int:
        """Calls a server takes at once: the transport's per-server budget (one without a transport that knows)."""
        return self.transport.lanes(name)

    def _scope(self, servers: list[str] | None, dag: str | None) -> list[Server]:
        scope = list(self.inventory.servers)
        if dag:
            members = {m.lower() for m in self.inventory.dag(dag).members}
            scope = [s for s in scope if s.name.lower() in members]
        if servers:
            wanted = {s.lower() for s in servers}
            scope = [s for s in scope if s.name.lower() in wanted]
        return scope

    def _make_transport(self) -> Transport:
        servers = list(self.inventory.servers)
        credentials: dict[str, Credentials] = {}
        # Offline analysis (--replay) contacts neither the lab nor a server: the lab is started only without it.
        if self.inventory.lab is not None and not self.replay:
            # The embedded default: the inventory describes a lab, so start it and talk to it over the wire.
            from dagcheck.lab.embedded import start_embedded

            self.lab = start_embedded(self.inventory)
            servers, credentials = self.lab.endpoints(servers)
        return transport_for(
            TransportSettings(tuple(servers), self.transcript, credentials, self.replay, self.save, str(self.inventory.file))
        )

    def targets(self, spec: CheckSpec, phase: str | None = None, enumerate_in: str | None = None) -> list[Target]:
        """Every object the check applies to, on every server in scope; a failed source gives one target.

        Objects are enumerated at collection time from the snapshot of `enumerate_in` (the run's first
        phase: what the servers look like now), so that a phase that follows a transition is collected
        only once, after it; the values are read from the target's own phase when the check runs."""
        phase = phase or self.phase
        enumerate_in = enumerate_in or phase
        if enumerate_in not in self._prefetched:
            # Every source any check reads, of every server in scope, at once (collect once, evaluate many):
            # no source waits for another, and the per-check enumeration below only reads memos.
            self._prefetched.add(enumerate_in)
            self.collector.prefetch([s.name for s in self.servers], [*SOURCES, *HOST_SOURCES, *PROBE_SOURCES], enumerate_in)
        self.collector.prefetch([s.name for s in self.servers], [spec.source], enumerate_in)
        out: list[Target] = []
        for server in self.servers:
            snap = self.collector.snapshot(server.name, enumerate_in)
            error = snap.failed(spec.source)
            if error is not None:
                out.append(Target(server.name, spec.source, None, server.name, _reason(error), phase, spec.id))
                continue
            if spec.per_server:
                out.append(Target(server.name, spec.source, PER_SERVER, server.name, None, phase, spec.id))
                continue
            for obj in snap.get(spec.source):
                if spec.select is None or spec.select(obj):
                    out.append(Target(server.name, spec.source, obj.key, obj.key, None, phase, spec.id))
        return out

    def lookup(self, target: Target, spec: CheckSpec) -> object:
        snap = self.collector.snapshot(target.server, target.phase)
        if target.key == PER_SERVER:
            return tuple(o for o in snap.get(target.source) if spec.select is None or spec.select(o))
        for obj in snap.get(target.source):
            if obj.key == target.key:
                return obj
        raise LookupError(f"{target.label} is no longer returned by {'; '.join(describe(target.source, target.server))}")

    def close(self) -> None:
        try:
            self.transport.close()
            left = self.transport.left_open
            if left:  # a second Ctrl-C, or a server that did not answer its Delete: say which (issue 24, item 14)
                sys.stderr.write(f"dagcheck: {len(left)} shell(s) may be left open: {'; '.join(left)}\n")
        finally:
            if self.lab is not None:
                self.lab.stop()


def _reason(error: RemoteError) -> str:
    return f"{error.server}: {error.cmdlet} failed: {error.reason}"
