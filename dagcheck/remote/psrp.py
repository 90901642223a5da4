"""The production transport: pypsrp's WSMan + PSRP client, one runspace pool per server and endpoint.

Commands are built only with add_cmdlet/add_parameter: Exchange's endpoint runs in NoLanguage
mode, and no inventory string ever becomes script text. Output objects are re-read from their
raw CLIXML with psrpcore (see dagcheck.clixml for why).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell
from pypsrp.shell import CommandState, Process, SignalCode
from pypsrp.wsman import WSMan

from dagcheck.cleartext import cleartext_problem
from dagcheck.errors import ConnectionFailed, OutcomeUnknown, Throttled
from dagcheck.inventory import Server
from dagcheck.remote import failures
from dagcheck.remote.base import Blind, CmdResult, Command, Endpoint, Getter, Transcript
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.failures import Kind
from dagcheck.remote.guard import ResponseRefused, install
from dagcheck.remote.https import HttpsGetter
from dagcheck.remote.psrp_logon import PsrpLogons
from dagcheck.remote.psrp_shells import MAX_RETRY_AFTER, OpenPool
from dagcheck.remote.psrp_wire import cmdlet_error, parse_output, receive_once
from dagcheck.remote.wsman_init import new_wsman

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_RETRY_AFTER = re.compile(r"will not be approved for at least (\d+) milliseconds")
# A change may legitimately run longer than one long poll (Move-ActiveMailboxDatabase of a large database
# takes minutes): it is bounded by this many operation timeouts. guessed: 4 (240 s at the default 60 s).
CHANGE_TIMEOUT_FACTOR = 4


class PsrpTransport(PsrpLogons):
    """Lazily opens one RunspacePool per (server, endpoint); reused for the whole run; closed at the end.

    The shells (pools, lanes, close) are PsrpShells' (dagcheck.remote.psrp_shells), the logon proof and the
    per-server verdicts PsrpLogons' (dagcheck.remote.psrp_logon); this class connects and runs commands."""

    live = True

    def __init__(
        self,
        servers: dict[str, Server],
        transcript: Transcript | None = None,
        credentials: dict[str, Credentials] | None = None,
        throttle_retries: int = 3,
        backoff: float = 2.0,
        reconnect_delay: float = 5.0,
    ) -> None:
        super().__init__(servers, transcript, credentials, throttle_retries)
        # Servers that answered a call in this run: a connection to one that then fails is a restart or a reset
        # (retried once), even on a shell another lane has just discarded or not opened yet.
        self._answered: set[str] = set()
        self.backoff = backoff
        self.reconnect_delay = reconnect_delay  # before retrying a read on a server that dropped us mid-run

    def _server(self, name: str) -> Server:
        try:
            return self.servers[name.lower()]
        except KeyError:
            raise ConnectionFailed(name, "connect", "server is not in the inventory") from None

    def _wsman(self, server: Server, endpoint: Endpoint) -> WSMan:
        """One WSMan connection (HTTP session, auth, TLS) per server and endpoint, shared by its shells."""
        key = (server.name.lower(), endpoint)
        with self._lock:
            if key in self._connections:
                return self._connections[key]
        settings = server.connection
        uri = server.exchange_uri() if endpoint is Endpoint.EXCHANGE else server.windows_uri()
        parts = urlsplit(uri)
        creds = self._creds(server)
        ssl = parts.scheme == "https"
        if ssl and not settings.verify_tls:
            log.warning("TLS certificate verification is DISABLED for %s (%s)", server.name, uri)
            self.unverified_tls.add(server.name)
        cleartext = cleartext_problem(uri, settings.auth, settings.encryption, settings.connect_address)
        if cleartext is not None:  # the inventory refuses it unless connection.allow_cleartext (dagcheck.inventory)
            log.warning("CLEARTEXT to %s: %s (connection.allow_cleartext: true in the inventory)", server.name, cleartext)
            self.cleartext.add(server.name)
        host = parts.hostname or server.fqdn
        wsman = install(
            new_wsman(
                settings.connect_address or host,
                port=parts.port or (443 if ssl else 80),
                path=parts.path.lstrip("/") or "wsman",
                ssl=ssl,
                auth=settings.auth,
                username=creds.username,
                password=creds.password,
                certificate_pem=creds.certificate_pem,  # paths of the PEM files (pypsrp reads them)
                certificate_key_pem=creds.certificate_key_pem,
                # pypsrp annotates a bool, but passes a CA bundle's path on to requests' verify as it is
                cert_validation=(settings.ca_bundle or True) if settings.verify_tls else False,  # type: ignore[arg-type]
                encryption=settings.encryption,
                operation_timeout=settings.operation_timeout,
                read_timeout=settings.read_timeout,
                connection_timeout=min(30, settings.read_timeout),
                reconnection_retries=0,
                # Kerberos asks for HTTP/<host> (the SPN WinRM registers), for the URI's host even when the
                # connection goes to another address; pypsrp's default would be host/<connect address>.
                negotiate_service="HTTP",
                negotiate_hostname_override=host,
            ),
            settings.max_response_mb,
        )  # size cap, no DTDs, HTTP errors summarised (dagcheck.remote.guard)
        receive_once(wsman)
        with self._lock:
            return self._connections.setdefault(key, wsman)

    def call_bound(self, server: str, is_read: bool) -> float | None:
        """One operation timeout for a read, CHANGE_TIMEOUT_FACTOR of them for a change (_end_invoke)."""
        known = self.servers.get(server.lower())
        if known is None:
            return None
        return float(known.connection.operation_timeout * (1 if is_read else CHANGE_TIMEOUT_FACTOR))

    def https(self, server: str) -> Getter:
        """A GET client with the server's own TLS settings; refused at once for a server found blind."""
        known = self.servers.get(server.lower())
        if known is None:
            raise ConnectionFailed(server, "Invoke-WebRequest", "server is not in the inventory")
        blind = self.states.refusal(server)
        if blind is not None:
            raise ConnectionFailed(server, blind.what, blind.reason)
        return HttpsGetter(known, self.transcript, unverified=self.unverified_tls)

    def run(self, server_name: str, endpoint: Endpoint, command: Command) -> list[Any]:
        server = self._server(server_name)
        self._refuse_if_blind(server, command.cmdlet)
        with self._lane(server), self.transcript.record(server.name, endpoint, command) as inv:
            result = self._with_retries(
                server, command.cmdlet, command.is_read, lambda: self._run_once(server, endpoint, command)
            )
            inv.objects = len(result)
            return result

    def _with_retries(self, server: Server, what: str, is_read: bool, attempt: Callable[[], _T]) -> _T:
        """Throttling: back off and try again (the server refused before running anything). A lost shell
        or connection: a read is retried once on a new shell; a change that may have run is not repeated
        (OutcomeUnknown: the caller re-verifies by reading); one that certainly did not run is."""
        throttled, reopened = 0, False
        while True:
            try:
                return attempt()
            except Throttled as exc:
                if throttled >= self.throttle_retries or self.states.refusal(server.name) is not None:
                    self.states.mark(Blind(server.name, "throttled", what, exc.reason), sticky=False)
                    raise
                # Exchange's user load quota says how long the next request will be refused: wait that
                # long at least (capped), else back off exponentially.
                time.sleep(max(self.backoff * (2**throttled), min(_retry_after(exc.reason), MAX_RETRY_AFTER)))
                throttled += 1
            except _ShellLost as lost:
                if lost.may_have_run and not is_read:
                    raise OutcomeUnknown(
                        server.name,
                        what,
                        f"{lost.reason}; it may or may not have run: verify by reading before doing anything else",
                    ) from None
                if reopened:
                    raise ConnectionFailed(server.name, what, f"{lost.reason} (again after reopening)") from None
                reopened = True
                log.info("%s: %s; reopening and retrying %s once", server.name, lost.reason, what)
                if lost.connection:
                    time.sleep(self.reconnect_delay)
                self._refuse_if_blind(server, what)

    def _run_once(self, server: Server, endpoint: Endpoint, command: Command) -> list[Any]:
        with self._lock:
            established = (server.name.lower(), endpoint) in self._pools or server.name.lower() in self._answered
        sent = requested = False  # the Command was answered / the Command request went out
        entry: OpenPool | None = None
        try:
            entry = self._use_pool(server, endpoint)
            requested = True
            ps = PowerShell(entry.pool)
            ps.add_cmdlet(command.cmdlet)
            for name, value in command.parameters:
                ps.add_parameter(name, value)
            if command.member:
                ps.add_cmdlet("ForEach-Object").add_parameter("MemberName", command.member)
            with entry.send:
                ps.begin_invoke()
            sent = True
            output = self._end_invoke(server, ps, command)  # pipelines of one pool wait side by side
            # pypsrp keeps every pipeline of a pool (its commands and raw output) in pool.pipelines until the
            # pool closes: a run's whole answers over again, held to the end. A finished one is routed no more.
            entry.pool.pipelines.pop(ps.id, None)
            with self._lock:
                self._answered.add(server.name.lower())
        except failures.CAUGHT as exc:
            raise self._failure(
                server, endpoint, command.cmdlet, exc, sent=sent, requested=requested, established=established
            ) from None
        finally:
            if entry is not None:
                with self._lock:
                    entry.active -= 1
        if ps.streams.error:
            raise cmdlet_error(server.name, command.cmdlet, ps.streams.error[0])
        raw = [getattr(o, "_xml", None) for o in output]
        if self.raw_sink is not None and all(isinstance(x, str) for x in raw):
            self.raw_sink(server.name, command, raw)  # type: ignore[arg-type]
        try:
            return [parse_output(o) for o in output]
        except (ResponseRefused, *failures.PARSE_ERRORS) as exc:
            raise self._failure(server, endpoint, command.cmdlet, exc, sent=True, requested=True, established=True) from None

    def _use_pool(self, server: Server, endpoint: Endpoint) -> OpenPool:
        """The server's pool for the endpoint, counted as in use (so that _make_room leaves it open)."""
        while True:
            entry = self._pool(server, endpoint)
            with self._lock:
                if not entry.closed:
                    entry.active += 1
                    return entry

    def _end_invoke(self, server: Server, ps: PowerShell, command: Command) -> list[Any]:
        """pypsrp's end_invoke with a deadline: Receive long-polls for the operation timeout and pypsrp
        would poll again forever (a stalled Get-Queue held a run for minutes). A read gets one operation
        timeout, a change CHANGE_TIMEOUT_FACTOR of them; then the pipeline is stopped. A read that
        overran marks the server hung (unreachable) for the run; a change that overran may have run
        (OutcomeUnknown: the caller re-verifies by reading)."""
        op = max(1, int(server.connection.operation_timeout))
        bound = op if command.is_read else op * CHANGE_TIMEOUT_FACTOR
        deadline = time.monotonic() + bound
        while ps.state == PSInvocationState.RUNNING:
            left = deadline - time.monotonic()
            if left <= 0:
                try:
                    ps.stop()
                except Exception as exc:  # stopping is best effort: the verdict is made
                    log.debug("stopping %s on %s failed: %s", command.cmdlet, server.name, exc)
                what = "connection.operation_timeout" + ("" if command.is_read else f" x {CHANGE_TIMEOUT_FACTOR} for a change")
                reason = f"timed out: no answer to {command.cmdlet} within {bound} s ({what}); the pipeline was stopped"
                if not command.is_read:
                    raise OutcomeUnknown(
                        server.name,
                        command.cmdlet,
                        f"{reason}; it may or may not have run: verify by reading before doing anything else",
                    )
                raise self._unreachable(server, command.cmdlet, reason)
            ps.poll_invoke(timeout=max(1, min(op, int(left + 0.999))))
        return ps.output

    def _failure(
        self, server: Server, endpoint: Endpoint, what: str, exc: BaseException, *, sent: bool, requested: bool, established: bool
    ) -> Exception:
        """What a library's exception means for the run (dagcheck.remote.failures names it): a refused logon
        judged by the proof rule, a lost shell or connection retried by _with_retries, throttling backed off, a
        hung or unreachable server given up for the run, or a failure of this call. sent: the Command was
        answered; requested: the Command request went out; established: the server answered before. An
        exception no row names is not the server's doing and is raised as it is."""
        failure = failures.classify(exc, server.connection.auth)
        if failure is None:
            raise exc
        if failure.kind is Kind.LOGON_REFUSED:
            self._discard(server, endpoint)
            return self._rejected(server, what, failure.reason)
        if failure.kind is Kind.SHELL_LOST:
            self._discard(server, endpoint, close=False)  # the server no longer has it
            # Refused at Command: the pipeline was never created. Lost while receiving: it may have run.
            return _ShellLost(failure.reason, may_have_run=sent)
        if failure.kind is Kind.THROTTLED:  # refused at Create (nothing was opened) or at Command (the pool is fine)
            return failure.raised(server.name, what)
        if failure.kind is Kind.TIMEOUT:
            self._discard(server, endpoint, close=False)
            return self._unreachable(server, what, failure.reason)
        if failure.kind is Kind.CONNECTION:
            self._discard(server, endpoint, close=not established)
            if established:  # the server was there a moment ago: a restart, a reset
                # Dropped with the Command on its way: the server may have started it before it went.
                return _ShellLost(failure.reason, may_have_run=requested, connection=True)
            return self._unreachable(server, what, failure.reason)
        # Our side of Negotiate, an HTTP error, another fault, a bad answer: that connection is not trusted again.
        self._discard(server, endpoint)
        return failure.raised(server.name, what)

    def run_cmd(self, server_name: str, command_line: str) -> CmdResult:
        """Run a Windows command line in a WinRS cmd shell over the server's Windows endpoint. The host
        checks' command lines only read (reg query, sc query, fsutil volume diskfree)."""
        server = self._server(server_name)
        self._refuse_if_blind(server, command_line)
        command = Command(command_line)
        with self._lane(server), self.transcript.record(server.name, Endpoint.WINRS, command) as inv:
            result = self._with_retries(server, command_line, True, lambda: self._run_cmd_once(server, command_line))
            inv.objects = 1
            return result

    def _run_cmd_once(self, server: Server, command_line: str) -> CmdResult:
        with self._lock:
            established = server.name.lower() in self._cmd_shells or server.name.lower() in self._answered
        sent = requested = False
        try:
            shell, lock = self._cmd_shell(server)
            requested = True
            with lock:
                process = Process(shell, command_line)
                process.begin_invoke()
                sent = True
                self._end_process(server, process, command_line)
                with self._lock:
                    self._answered.add(server.name.lower())
                process.signal(SignalCode.TERMINATE)
        except failures.CAUGHT as exc:
            raise self._failure(
                server, Endpoint.WINDOWS, command_line, exc, sent=sent, requested=requested, established=established
            ) from None
        return CmdResult(process.rc or 0, process.stdout.decode("utf-8", "replace"), process.stderr.decode("utf-8", "replace"))

    def _end_process(self, server: Server, process: Process, command_line: str) -> None:
        """pypsrp's Process.end_invoke with the deadline of a PSRP read (_end_invoke): its Receive long-polls
        again and again while the command runs (a hung sc.exe held a run for ever). The host checks' command
        lines only read, so they get one operation timeout; then the command is terminated and the server
        counts as hung (unreachable) for the rest of the run, as for a stalled cmdlet."""
        op = max(1, int(server.connection.operation_timeout))
        deadline = time.monotonic() + op
        while process.state != CommandState.DONE:
            left = deadline - time.monotonic()
            if left <= 0:
                try:
                    process.signal(SignalCode.TERMINATE)
                except Exception as exc:  # stopping is best effort: the verdict is made
                    log.debug("terminating %r on %s failed: %s", command_line, server.name, exc)
                raise self._unreachable(
                    server,
                    command_line,
                    f"timed out: {command_line} did not finish within {op} s "
                    "(connection.operation_timeout); the command was terminated",
                )
            process.poll_invoke(timeout=max(1, min(op, int(left + 0.999))))


class _ShellLost(Exception):
    """The server no longer has our shell (expired, recycled, rebooted) or dropped an established connection."""

    def __init__(self, reason: str, may_have_run: bool, connection: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.may_have_run, self.connection = reason, may_have_run, connection


def _retry_after(reason: str) -> float:
    match = _RETRY_AFTER.search(reason)
    return int(match.group(1)) / 1000 if match else 0.0
