"""Snapshots: each source (one cmdlet) collected once per server per phase, whatever reads it.

A source that fails (unreachable server, cmdlet error) is remembered as failed with its reason,
so that every check reading it fails with that reason and the run goes on for the others.

Which sources exist, what each runs and how its answer is parsed is declared in dagcheck/sources/ (one
module per Exchange resource) and listed in dagcheck/sources/registry.py; this module only schedules and runs them.

DAG-wide sources (the DAG's -Status, the cluster's nodes) are the same from every member: they are
fetched once per DAG and phase from one member (the next one when it fails) and shared by every
member's snapshot. Prefetching schedules every source of every server at once, each server's calls
on as many lanes as its budget allows (PsrpTransport.lanes), longest first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dagcheck.errors import ParseError, RemoteError
from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult, Transport
from dagcheck.remote.testinfra_backend import host_for
from dagcheck.sources import ProbeContext
from dagcheck.sources.registry import HOST_SOURCES, PROBE_SOURCES, SOURCES


def describe(source: str, server: str, expectations: Expectations | None = None, dag: str | None = None) -> list[str]:
    """The command lines behind a source, as an administrator would type them (a DAG-wide source names
    the server's DAG, `<DAG>` when it is not given)."""
    if source in SOURCES:
        cmdlet = SOURCES[source]
        return [c.render() for c in cmdlet.commands(dag or "<DAG>" if cmdlet.dag_wide else server)]
    if source in PROBE_SOURCES:
        return PROBE_SOURCES[source].lines(server)
    return HOST_SOURCES[source].lines(server, expectations or Expectations())


def cost(source: str, expectations: Expectations | None = None) -> int:
    """A rough relative duration, to start the longest sources first (Test-* cmdlets take seconds on a
    real server, a Get- a fraction of one): what keeps a server's lanes evenly busy."""
    if source in HOST_SOURCES:
        return len(HOST_SOURCES[source].lines("server", expectations or Expectations()))
    if source in PROBE_SOURCES:
        return len(PROBE_SOURCES[source].lines("server"))
    return sum(10 if c.cmdlet.lower().startswith("test-") else 1 for c in SOURCES[source].commands("x"))


class SourceFailed(Exception):
    """Raised to every reader of a source whose collection failed; carries the original reason."""

    def __init__(self, error: RemoteError) -> None:
        super().__init__(str(error))
        self.error = error


class Snapshot:
    """What one server looked like in one phase; filled lazily, each source at most once."""

    def __init__(
        self,
        server: str,
        phase: str,
        transport: Transport,
        expectations: Expectations | None = None,
        shared: Callable[[str, str, str], list[Any]] | None = None,
    ) -> None:
        self.server = server
        self.phase = phase
        self._transport = transport
        self._shared = shared  # (source, server, phase) -> the raw objects of a DAG-wide source
        self._expectations = expectations or Expectations()
        self._results: dict[str, tuple[Any, ...] | RemoteError] = {}
        self._lock = threading.Lock()
        self._source_locks: dict[str, threading.Lock] = {}

    def get(self, source: str) -> tuple[Any, ...]:
        result = self._collect(source)
        if isinstance(result, RemoteError):
            raise SourceFailed(result)
        return result

    def failed(self, source: str) -> RemoteError | None:
        result = self._collect(source)
        return result if isinstance(result, RemoteError) else None

    def _collect(self, name: str) -> tuple[Any, ...] | RemoteError:
        with self._lock:
            if name in self._results:
                return self._results[name]
            lock = self._source_locks.setdefault(name, threading.Lock())
        with lock:
            with self._lock:
                if name in self._results:
                    return self._results[name]
            try:
                result: tuple[Any, ...] | RemoteError = self._fetch(name)
            except RemoteError as exc:
                result = exc
            with self._lock:
                self._results[name] = result
            return result

    def _fetch(self, name: str) -> tuple[Any, ...]:
        if name in PROBE_SOURCES:
            ctx = ProbeContext(
                self.server,
                self.failed,
                self.get,
                lambda: self._transport.https(self.server),
                lambda endpoint, command: self._transport.run(self.server, endpoint, command),
                live=self._transport.live,
            )
            try:
                return tuple(PROBE_SOURCES[name].collect(ctx))
            except ParseError as exc:
                raise exc.on(self.server) from None
        if name in HOST_SOURCES:
            source = HOST_SOURCES[name]
            host = host_for(self._transport, self.server)
            results = []
            for line in source.lines(self.server, self._expectations):
                r = host.run(line)
                results.append(CmdResult(r.rc, r.stdout, r.stderr))
            return tuple(source.parse(results, self.server, self._expectations))
        cmdlet = SOURCES[name]
        if cmdlet.dag_wide and self._shared is not None:
            raw = self._shared(name, self.server, self.phase)
        else:
            own = None if cmdlet.dag_wide else self.server  # no DAG known: ask for every DAG
            raw = [o for c in cmdlet.commands(own) for o in self._transport.run(self.server, cmdlet.endpoint, c)]
        try:
            return tuple(cmdlet.parse(o, self.server) for o in raw)
        except ParseError as exc:  # an answer in no known shape: this source of this server fails, with why
            raise exc.on(self.server) from None


class Collector:
    """Snapshots by (server, phase) for the whole session; prefetches every source of every server at once.

    dags: each server's DAG and its members (inventory order), for the DAG-wide sources. lanes: how
    many calls a server takes at once (the transport's budget); max_workers caps the threads."""

    def __init__(
        self,
        transport: Transport,
        max_workers: int = 1024,
        expectations: Expectations | None = None,
        dags: Mapping[str, tuple[str, Sequence[str]]] | None = None,
        lanes: Callable[[str], int] | None = None,
    ) -> None:
        self.transport = transport
        self.expectations = expectations
        self.max_workers = max_workers
        self._dags = {k.lower(): (d, [m.lower() for m in ms]) for k, (d, ms) in (dags or {}).items()}
        self._lanes = lanes or (lambda server: 1)
        self._snapshots: dict[tuple[str, str], Snapshot] = {}
        self._shared: dict[tuple[str, str, str], list[Any] | RemoteError] = {}
        self._shared_locks: dict[tuple[str, str, str], threading.Lock] = {}
        self.served_by: dict[tuple[str, str, str], str] = {}  # (dag, phase, source) -> the member asked
        self._lock = threading.Lock()

    def snapshot(self, server: str, phase: str) -> Snapshot:
        key = (server.lower(), phase)
        with self._lock:
            if key not in self._snapshots:
                self._snapshots[key] = Snapshot(server, phase, self.transport, self.expectations, self._dag_wide)
            return self._snapshots[key]

    def dag_of(self, server: str) -> tuple[str | None, list[str]]:
        dag, members = self._dags.get(server.lower(), (None, []))
        return dag, members or [server.lower()]

    def server_asked(self, source: str, server: str, phase: str) -> str:
        """The member whose transcript holds the call behind this server's copy of the source."""
        if source in SOURCES and SOURCES[source].dag_wide:
            dag, _ = self.dag_of(server)
            return self.served_by.get(((dag or server).lower(), phase, source), server)
        return server

    def _dag_wide(self, source: str, server: str, phase: str) -> list[Any]:
        """A DAG-wide source, fetched once per DAG and phase: from the asking member, else the others in
        turn (one that is unreachable or fails the cmdlet); the first error when every member fails."""
        dag, members = self.dag_of(server)
        key = ((dag or server).lower(), phase, source)
        with self._lock:
            lock = self._shared_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._shared:
                cmdlet = SOURCES[source]
                order = [server.lower()] + [m for m in members if m != server.lower()]
                first: RemoteError | None = None
                result: list[Any] | RemoteError | None = None
                for member in order:
                    try:
                        result = [o for c in cmdlet.commands(dag) for o in self.transport.run(member, cmdlet.endpoint, c)]
                        self.served_by[key] = member
                        break
                    except RemoteError as exc:
                        first = first or exc
                self._shared[key] = result if result is not None else first  # type: ignore[assignment]
            result = self._shared[key]
        if isinstance(result, RemoteError):
            raise result
        return result

    def prefetch(self, servers: Iterable[str], sources: Iterable[str], phase: str) -> None:
        """Collect every (server, source) pair at once: no source waits for another server's. Each server
        gets as many worker lanes as its budget; each lane takes the longest source left first. A
        DAG-wide source is asked of the first member in scope only; the others share its answer."""
        servers = list(servers)
        sources = sorted(sources, key=lambda n: -cost(n, self.expectations))
        asked: set[tuple[str, str]] = set()
        queues: dict[str, list[str]] = {}
        for server in servers:
            todo = []
            for source in sources:
                if source in SOURCES and SOURCES[source].dag_wide:
                    dag = (self.dag_of(server)[0] or server).lower()
                    if (dag, source) in asked:
                        continue
                    asked.add((dag, source))
                todo.append(source)
            queues[server] = todo
        locks = {server: threading.Lock() for server in servers}

        def lane(server: str) -> None:
            snap = self.snapshot(server, phase)
            while True:
                with locks[server]:
                    if not queues[server]:
                        return
                    source = queues[server].pop(0)
                snap.failed(source)

        jobs = [server for server in servers for _ in range(max(1, min(self._lanes(server), len(queues[server]))))]
        if not jobs:
            return
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, len(jobs))), thread_name_prefix="collect") as pool:
            list(pool.map(lane, jobs))

    def invalidate(self, phase: str) -> None:
        """Forget a phase's snapshots (a transition changed the servers)."""
        with self._lock:
            for key in [k for k in self._snapshots if k[1] == phase]:
                del self._snapshots[key]
            for skey in [k for k in self._shared if k[1] == phase]:
                del self._shared[skey]
