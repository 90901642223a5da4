"""Snapshots: each source (one cmdlet) collected once per server per phase, whatever reads it.

A source that fails (unreachable server, cmdlet error) is remembered as failed with its reason,
so that every check reading it fails with that reason and the run goes on for the others.

DAG-wide sources (the DAG's -Status, the cluster's nodes) are the same from every member: they are
fetched once per DAG and phase from one member (the next one when it fails) and shared by every
member's snapshot. Prefetching schedules every source of every server at once, each server's calls
on as many lanes as its budget allows (PsrpTransport.lanes), longest first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from dagcheck.sources import health as health_source
from dagcheck.sources import iis_state
from dagcheck.sources import services as services_source
from dagcheck.sources import outlook_anywhere
from dagcheck.sources import ProbeContext, certificates, clock, protocol_health, tls_settings


@dataclass(frozen=True)
class Source:
    """One cmdlet (or a few of one kind) run on a server's endpoint, and the parser of each object.

    dag_wide: the command takes the DAG's name (None for a server in no DAG) instead of the server's,
    and its answer is the same from every member; parse still gets the member that reads it."""

    name: str
    endpoint: Endpoint
    command: Callable[[Any], Command | list[Command]]
    parse: Callable[[Any, str], Any]
    dag_wide: bool = False

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
        # -Identity: without it every DAG of the organisation comes back, from every server (and -Status
        # asks each DAG's Active Manager).
        Source("dag_status", Endpoint.EXCHANGE,
               lambda d: Command.of("Get-DatabaseAvailabilityGroup", Identity=d, Status=True) if d
               else Command.of("Get-DatabaseAvailabilityGroup", Status=True),
               lambda o, s: model.parse_dag_status(o), dag_wide=True),
        Source("cluster_nodes", Endpoint.WINDOWS, lambda d: Command.of("Get-ClusterNode"), model.parse_cluster_node,
               dag_wide=True),
        Source("databases", Endpoint.EXCHANGE, lambda s: Command.of("Get-MailboxDatabase", Server=s, Status=True),
               model.parse_mailbox_database),
        Source("mapi", Endpoint.EXCHANGE, lambda s: Command.of("Test-MAPIConnectivity", Server=s),
               lambda o, s: model.parse_mapi(o)),
        Source("client_access", Endpoint.EXCHANGE, lambda s: Command.of("Get-ClientAccessService", Identity=s),
               lambda o, s: model.parse_client_access(o)),
        Source("vdirs", Endpoint.EXCHANGE, lambda s: [Command.of(c, Server=s, ShowMailboxVirtualDirectories=True) for c in VDIR_CMDLETS],
               model.parse_virtual_directory),
        # Read for the configuration baseline (dagcheck/drift.py): what a CU can quietly reset.
        Source("receive_connectors", Endpoint.EXCHANGE, lambda s: Command.of("Get-ReceiveConnector", Server=s),
               model.parse_receive_connector),
        Source("certificates", Endpoint.EXCHANGE, certificates.certificate_command,
               certificates.parse_exchange_certificate),
        # Organisation-wide (AD): asked once per DAG and phase, like the DAG's own status.
        Source("auth_config", Endpoint.EXCHANGE, certificates.auth_config_command, certificates.parse_auth_config,
               dag_wide=True),
        Source("exsetup", Endpoint.WINDOWS, lambda s: Command.of("Get-Command", member="FileVersionInfo", Name="ExSetup.exe"),
               model.parse_file_version),
        # Managed Availability: every monitor with its health set (dagcheck/sources/health.py).
        Source("server_health", Endpoint.EXCHANGE, health_source.command, health_source.parse),
        # Every Windows service with its status and start type (dagcheck/sources/services.py).
        Source("service_start", Endpoint.WINDOWS, services_source.command, services_source.parse),
        Source("outlook_anywhere", Endpoint.EXCHANGE, outlook_anywhere.command, outlook_anywhere.parse),
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
        HostSource("windows_build", lambda server, e: [f'reg.exe query "{host_rules.WINDOWS_NT}" /v CurrentBuildNumber'],
                   lambda results, server, e: host_rules.parse_windows_build(results, server)),
        HostSource("volumes", lambda server, e: [f"fsutil volume diskfree {v}" for v in e.host_volumes],
                   lambda results, server, e: [model.parse_diskfree(server, v, r.rc, r.stdout, r.stderr)
                                               for v, r in zip(e.host_volumes, results, strict=True)]),
        HostSource("windows_services", lambda server, e: ["sc.exe queryex type= service state= all"],
                   lambda results, server, e: model.parse_sc_query(server, results[0].stdout)),
        # SCHANNEL protocols and .NET's TLS switches, as HealthChecker reads them (DAG-wide parity).
        HostSource("tls_settings", lambda server, e: list(tls_settings.COMMAND_LINES),
                   lambda results, server, e: tls_settings.parse(results, server)),
        # Which certificate IIS serves (HTTP.sys bindings on 443 and 444), where Get-ExchangeCertificate has no Services.
        HostSource("ssl_bindings", lambda server, e: [certificates.SSLCERT_LINE],
                   lambda results, server, e: certificates.parse_sslcert(results, server)),
        # Extended Protection, SSL flags and IP restrictions as IIS has them, for every vdir of both sites.
        HostSource("iis", lambda server, e: [iis.COMMAND_LINE],
                   lambda results, server, e: ep_rules.read_iis(results[0], server)),
        # Whether the Exchange web sites and application pools run (dagcheck/sources/iis_state.py).
        HostSource("iis_state", lambda server, e: list(iis_state.COMMAND_LINES),
                   lambda results, server, e: iis_state.parse(results, server)),
    )
}


@dataclass(frozen=True)
class ProbeSource:
    """A source that makes its own requests (HTTPS to a server's health pages) or times its call (the
    server's clock): collect(ProbeContext) may read other sources of the same snapshot first (memoized,
    never a second call), use the HTTPS client with the server's TLS settings, or run one command."""

    name: str
    lines: Callable[[str], list[str]]
    collect: Callable[[ProbeContext], list[Any]]


PROBE_SOURCES: dict[str, ProbeSource] = {
    s.name: s
    for s in (
        ProbeSource("protocol_health", protocol_health.describe, protocol_health.collect),
        # The member's clock, timed from the jump host (Get-Date on the Windows endpoint).
        ProbeSource("clock", lambda s: [clock.COMMAND.render()], clock.collect),
    )
}


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

    def __init__(self, server: str, phase: str, transport: Transport, expectations: Expectations | None = None,
                 shared: Callable[[str, str, str], list[Any]] | None = None) -> None:
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
            ctx = ProbeContext(self.server, self.failed, self.get, lambda: self._transport.https(self.server),
                               lambda endpoint, command: self._transport.run(self.server, endpoint, command),
                               live=self._transport.live)
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

    def __init__(self, transport: Transport, max_workers: int = 1024, expectations: Expectations | None = None,
                 dags: Mapping[str, tuple[str, Sequence[str]]] | None = None,
                 lanes: Callable[[str], int] | None = None) -> None:
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
