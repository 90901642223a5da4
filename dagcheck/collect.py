"""Snapshots: each source (one cmdlet) collected once per server per phase, whatever reads it.

A source that fails (unreachable server, cmdlet error) is remembered as failed with its reason,
so that every check reading it fails with that reason and the run goes on for the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dagcheck import iis, model
from dagcheck.errors import ParseError, RemoteError
from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult, Command, Endpoint, Transport
from dagcheck.remote.testinfra_backend import host_for
from dagcheck.rules import extended_protection as ep_rules
from dagcheck.rules import host as host_rules


@dataclass(frozen=True)
class Source:
    """One cmdlet (or a few of one kind) run on a server's endpoint, and the parser of each object."""

    name: str
    endpoint: Endpoint
    command: Callable[[str], Command | list[Command]]
    parse: Callable[[Any, str], Any]

    def commands(self, server: str) -> list[Command]:
        made = self.command(server)
        return made if isinstance(made, list) else [made]


@dataclass(frozen=True)
class HostSource:
    """Windows command lines run through the server's testinfra host (WinRS), and their parser."""

    name: str
    lines: Callable[[str, Expectations], list[str]]
    parse: Callable[[list[CmdResult], str, Expectations], list[Any]]
    endpoint: Endpoint = Endpoint.WINRS


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("components", Endpoint.EXCHANGE, lambda s: Command.of("Get-ServerComponentState", Identity=s),
               lambda o, s: model.parse_component_state(o, s)),
        Source("copies", Endpoint.EXCHANGE, lambda s: Command.of("Get-MailboxDatabaseCopyStatus", Server=s),
               lambda o, s: model.parse_copy_status(o)),
        Source("queues", Endpoint.EXCHANGE, lambda s: Command.of("Get-Queue", Server=s), model.parse_queue),
        Source("replication", Endpoint.EXCHANGE, lambda s: Command.of("Test-ReplicationHealth", Identity=s),
               lambda o, s: model.parse_replication_check(o)),
        Source("services", Endpoint.EXCHANGE, lambda s: Command.of("Test-ServiceHealth", Server=s),
               model.parse_service_health),
        Source("exchange_server", Endpoint.EXCHANGE, lambda s: Command.of("Get-ExchangeServer", Identity=s),
               lambda o, s: model.parse_exchange_server(o)),
        Source("mailbox_server", Endpoint.EXCHANGE, lambda s: Command.of("Get-MailboxServer", Identity=s),
               lambda o, s: model.parse_mailbox_server(o)),
        Source("dag_status", Endpoint.EXCHANGE, lambda s: Command.of("Get-DatabaseAvailabilityGroup", Status=True),
               lambda o, s: model.parse_dag_status(o)),
        Source("cluster_nodes", Endpoint.WINDOWS, lambda s: Command.of("Get-ClusterNode"), model.parse_cluster_node),
        Source("databases", Endpoint.EXCHANGE, lambda s: Command.of("Get-MailboxDatabase", Server=s, Status=True),
               model.parse_mailbox_database),
        Source("mapi", Endpoint.EXCHANGE, lambda s: Command.of("Test-MAPIConnectivity", Server=s),
               lambda o, s: model.parse_mapi(o)),
        Source("client_access", Endpoint.EXCHANGE, lambda s: Command.of("Get-ClientAccessService", Identity=s),
               lambda o, s: model.parse_client_access(o)),
        Source("vdirs", Endpoint.EXCHANGE, lambda s: [Command.of(c, Server=s, ShowMailboxVirtualDirectories=True) for c in VDIR_CMDLETS],
               model.parse_virtual_directory),
        Source("exsetup", Endpoint.WINDOWS, lambda s: Command.of("Get-Command", member="FileVersionInfo", Name="ExSetup.exe"),
               model.parse_file_version),
    )
}


# The Get-*VirtualDirectory cmdlets whose Extended Protection settings are checked.
VDIR_CMDLETS = (
    "Get-OwaVirtualDirectory", "Get-EcpVirtualDirectory", "Get-WebServicesVirtualDirectory",
    "Get-AutodiscoverVirtualDirectory", "Get-MapiVirtualDirectory", "Get-OabVirtualDirectory",
    "Get-ActiveSyncVirtualDirectory", "Get-PowerShellVirtualDirectory",
)

HOST_SOURCES: dict[str, HostSource] = {
    s.name: s
    for s in (
        HostSource("pending_reboot", lambda server, e: host_rules.reboot_command_lines(server),
                   lambda results, server, e: host_rules.parse_reboot(results, server)),
        HostSource("dotnet", lambda server, e: [f'reg.exe query "{host_rules.NDP_FULL}" /v Release'],
                   lambda results, server, e: host_rules.parse_dotnet(results, server)),
        HostSource("volumes", lambda server, e: [f"fsutil volume diskfree {v}" for v in e.host_volumes],
                   lambda results, server, e: [model.parse_diskfree(server, v, r.rc, r.stdout, r.stderr)
                                               for v, r in zip(e.host_volumes, results, strict=True)]),
        HostSource("windows_services", lambda server, e: ["sc.exe queryex type= service state= all"],
                   lambda results, server, e: model.parse_sc_query(server, results[0].stdout)),
        # Extended Protection, SSL flags and IP restrictions as IIS has them, for every vdir of both sites.
        HostSource("iis", lambda server, e: [iis.COMMAND_LINE],
                   lambda results, server, e: ep_rules.read_iis(results[0], server)),
    )
}


def describe(source: str, server: str, expectations: Expectations | None = None) -> list[str]:
    """The command lines behind a source, as an administrator would type them."""
    if source in SOURCES:
        return [c.render() for c in SOURCES[source].commands(server)]
    return HOST_SOURCES[source].lines(server, expectations or Expectations())


class SourceFailed(Exception):
    """Raised to every reader of a source whose collection failed; carries the original reason."""

    def __init__(self, error: RemoteError) -> None:
        super().__init__(str(error))
        self.error = error


class Snapshot:
    """What one server looked like in one phase; filled lazily, each source at most once."""

    def __init__(self, server: str, phase: str, transport: Transport, expectations: Expectations | None = None) -> None:
        self.server = server
        self.phase = phase
        self._transport = transport
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
        if name in HOST_SOURCES:
            source = HOST_SOURCES[name]
            host = host_for(self._transport, self.server)
            results = []
            for line in source.lines(self.server, self._expectations):
                r = host.run(line)
                results.append(CmdResult(r.rc, r.stdout, r.stderr))
            return tuple(source.parse(results, self.server, self._expectations))
        cmdlet = SOURCES[name]
        raw = [o for c in cmdlet.commands(self.server) for o in self._transport.run(self.server, cmdlet.endpoint, c)]
        try:
            return tuple(cmdlet.parse(o, self.server) for o in raw)
        except ParseError as exc:  # an answer in no known shape: this source of this server fails, with why
            raise exc.on(self.server) from None


class Collector:
    """Snapshots by (server, phase) for the whole session; prefetches sources in parallel."""

    def __init__(self, transport: Transport, max_workers: int = 8, expectations: Expectations | None = None) -> None:
        self.transport = transport
        self.expectations = expectations
        self.max_workers = max_workers
        self._snapshots: dict[tuple[str, str], Snapshot] = {}
        self._lock = threading.Lock()

    def snapshot(self, server: str, phase: str) -> Snapshot:
        key = (server.lower(), phase)
        with self._lock:
            if key not in self._snapshots:
                self._snapshots[key] = Snapshot(server, phase, self.transport, self.expectations)
            return self._snapshots[key]

    def prefetch(self, servers: Iterable[str], sources: Iterable[str], phase: str) -> None:
        """Collect many (server, source) pairs at once: one pool per server, servers in parallel."""
        servers = list(servers)
        sources = list(sources)

        def one_server(server: str) -> None:
            snap = self.snapshot(server, phase)
            for source in sources:
                snap.failed(source)

        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            list(pool.map(one_server, servers))

    def invalidate(self, phase: str) -> None:
        """Forget a phase's snapshots (a transition changed the servers)."""
        with self._lock:
            for key in [k for k in self._snapshots if k[1] == phase]:
                del self._snapshots[key]
