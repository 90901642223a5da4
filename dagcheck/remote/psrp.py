"""The production transport: pypsrp's WSMan + PSRP client, one runspace pool per server and endpoint.

Commands are built only with add_cmdlet/add_parameter: Exchange's endpoint runs in NoLanguage
mode, and no inventory string ever becomes script text. Output objects are re-read from their
raw CLIXML with psrpcore (see dagcheck.clixml for why).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from pypsrp.complex_objects import Pipeline, PSInvocationState
from pypsrp.exceptions import (
    InvalidPSRPOperation,
    SerializationError,
    WinRMError,
)
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.shell import CommandState, Process, SignalCode, WinRS
from pypsrp.wsman import NAMESPACES as WSMAN_NAMESPACES
from pypsrp.wsman import WSMan, WSManAction

from dagcheck.cleartext import cleartext_problem
from dagcheck.clixml import from_element_text
from dagcheck.errors import CmdletFailed, ConnectionFailed, OutcomeUnknown, Throttled
from dagcheck.inventory import Server
from dagcheck.remote import diagnosis, failures
from dagcheck.remote.base import Blind, CmdResult, Command, Endpoint, Getter, Transcript, Transport
from dagcheck.remote.credentials import CredentialCache, Credentials, account_key
from dagcheck.remote.failures import Kind
from dagcheck.remote.guard import ResponseRefused, install, refuse_dtd
from dagcheck.remote.https import HttpsGetter

log = logging.getLogger(__name__)

# ErrorCategory integers (System.Management.Automation.ErrorCategory) for the names in messages.
ERROR_CATEGORIES = {
    0: "NotSpecified", 1: "OpenError", 2: "CloseError", 3: "DeviceError", 4: "DeadlockDetected",
    5: "InvalidArgument", 6: "InvalidData", 7: "InvalidOperation", 8: "InvalidResult", 9: "InvalidType",
    10: "MetadataError", 11: "NotImplemented", 12: "NotInstalled", 13: "ObjectNotFound",
    14: "OperationStopped", 15: "OperationTimeout", 16: "SyntaxError", 17: "ParserError",
    18: "PermissionDenied", 19: "ResourceBusy", 20: "ResourceExists", 21: "ResourceUnavailable",
    22: "ReadError", 23: "WriteError", 24: "FromStdErr", 25: "SecurityError", 26: "ProtocolError",
    27: "ConnectionError", 28: "AuthenticationError", 29: "LimitsExceeded", 30: "QuotaExceeded",
    31: "NotEnabled",
}
# Exchange's throttling errors: the budget/micro-delay exceptions (retry with backoff).
THROTTLING_MARKERS = ("OverBudgetException", "MicroDelay", "throttling", "ServerBusyException")
CONFIGURATION = {Endpoint.EXCHANGE: "Microsoft.Exchange", Endpoint.WINDOWS: "Microsoft.PowerShell"}
_T = TypeVar("_T")
MAX_RETRY_AFTER = 60.0
# Failed logons per account per run before it is withdrawn everywhere: one server may refuse alone (its own
# authentication broken), so a refusal is proven on a second server first (issue 24, item 2).
PROOF_LOGONS = 2
# Servers tried for that proof that could not tell (unreachable) before the account is given up.
PROOF_CANDIDATES = 3
# How long close() waits for the shells' Deletes, sent side by side, before naming those left open.
CLOSE_SECONDS = 5.0
_RETRY_AFTER = re.compile(r"will not be approved for at least (\d+) milliseconds")
# Exchange's runspace budget (PowerShellMaxRunspaces per PowerShellMaxRunspacesTimePeriod): "Fail to create
# [a] runspace because you have exceeded your budget to create runspace. Please wait for N seconds."
_BUDGET_REFUSAL = re.compile(r"exceeded your budget to create runspace\.\s*Please wait for (\d+) seconds?", re.IGNORECASE)
# A change may legitimately run longer than one long poll (Move-ActiveMailboxDatabase of a large database
# takes minutes): it is bounded by this many operation timeouts. guessed: 4 (240 s at the default 60 s).
CHANGE_TIMEOUT_FACTOR = 4


@dataclass
class _Pool:
    pool: RunspacePool
    lock: threading.Lock  # taken only to close the pool, and only while no pipeline uses it
    active: int = 0  # pipelines running on it now (guarded by the transport's lock)
    closed: bool = False
    send: threading.Lock = field(default_factory=threading.Lock)  # one Command at a time (shared fragmenter)


class PsrpTransport(Transport):
    """Lazily opens one RunspacePool per (server, endpoint); reused for the whole run; closed at the end."""

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
        super().__init__(transcript)
        self.servers = {k.lower(): v for k, v in servers.items()}
        self._credentials = {k.lower(): v for k, v in (credentials or {}).items()}
        self._pools: dict[tuple[str, Endpoint], _Pool] = {}
        self._connections: dict[tuple[str, Endpoint], WSMan] = {}
        self._cmd_shells: dict[str, tuple[WinRS, threading.Lock]] = {}
        # Servers that answered a call in this run: a connection to one that then fails is a restart or a reset
        # (retried once), even on a shell another lane has just discarded or not opened yet.
        self._answered: set[str] = set()
        self._lock = threading.Lock()
        self.throttle_retries = throttle_retries
        self.backoff = backoff
        self.reconnect_delay = reconnect_delay  # before retrying a read on a server that dropped us mid-run
        self._open_locks: dict[str, threading.Lock] = {}  # one shell opening at a time per server (the budget)
        self._lanes: dict[str, threading.BoundedSemaphore] = {}  # concurrent calls per server (see lanes())
        # Per-run server states (self.states, remote.base.ServerStates): unreachable and rejected-credential
        # servers are not contacted again; one prompt per account (CredentialCache).
        # Accounts that have logged on once this run, and the server that proved each (issue 24, item 2).
        self._proven: dict[object, str] = {}
        # The servers that refused each account not yet proven, in order: at most PROOF_LOGONS per run.
        self._refused: dict[object, list[str]] = {}
        self._logon_locks: dict[object, threading.Lock] = {}
        self._verdict_locks: dict[str, threading.Lock] = {}  # one verdict per refusing server
        # The servers of this run (self.scope, the session's scope): only they are asked to prove an account.
        self._credential_cache = CredentialCache()

    # ---- connections ----------------------------------------------------------------------

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
        wsman = install(WSMan(
            settings.connect_address or host,
            port=parts.port or (443 if ssl else 80),
            path=parts.path.lstrip("/") or "wsman",
            ssl=ssl,
            auth=settings.auth,
            username=creds.username,
            password=creds.password,
            certificate_pem=creds.certificate_pem,  # paths of the PEM files (pypsrp reads them)
            certificate_key_pem=creds.certificate_key_pem,
            cert_validation=(settings.ca_bundle or True) if settings.verify_tls else False,
            encryption=settings.encryption,
            operation_timeout=settings.operation_timeout,
            read_timeout=settings.read_timeout,
            connection_timeout=min(30, settings.read_timeout),
            reconnection_retries=0,
            # Kerberos asks for HTTP/<host> (the SPN WinRM registers), for the URI's host even when the
            # connection goes to another address; pypsrp's default would be host/<connect address>.
            negotiate_service="HTTP",
            negotiate_hostname_override=host,
        ), settings.max_response_mb)  # size cap, no DTDs, HTTP errors summarised (dagcheck.remote.guard)
        _receive_once(wsman)
        with self._lock:
            return self._connections.setdefault(key, wsman)

    def _creds(self, server: Server) -> Credentials:
        return self._credentials.get(server.name.lower()) or self._credential_cache.resolve(server.name, server.connection)

    def _account(self, server: Server) -> object | None:
        """The account key of a server's logons, or None while its credentials are not resolved yet (a
        resolution is never triggered here: that could prompt)."""
        creds = self._credentials.get(server.name.lower()) or self._credential_cache.peek(server.connection)
        return account_key(server.connection, creds) if creds is not None else None

    @contextmanager
    def _first_logon(self, server: Server) -> Iterator[None]:
        """Until an account has logged on once, its logons go one at a time (across servers and threads), so
        that a wrong password is rejected at most PROOF_LOGONS times, not once per server opened in parallel.
        A refusal is noted under the account's lock (_note_refusal), before the next logon may start. Once
        one logon has succeeded the account is proven and opens run in parallel again. Kerberos and
        certificates have no password to get wrong here: not serialised (_counts_logons). The cost of a hung
        first server: the others wait for its one timeout."""
        creds = self._creds(server)
        if not _counts_logons(server.connection, creds):
            yield
            return
        account = account_key(server.connection, creds)
        with self._lock:
            if account in self._proven:
                lock = None
            else:
                lock = self._logon_locks.setdefault(account, threading.Lock())
        if lock is None:
            yield
            return
        with lock:
            with self._lock:
                proven = account in self._proven
            if not proven:
                self._refuse_if_blind(server, "connect")  # withdrawn while this one waited: not tried again
                try:
                    yield
                except BaseException as exc:
                    refusal = _refusal(exc)
                    if refusal is not None:
                        self._note_refusal(server, account, creds, refusal)
                    raise
                with self._lock:
                    self._proven.setdefault(account, server.name)
                return
        # Proven while this one waited: it opens beside the others, not holding the lock. (It used to open
        # inside it, so every server queued behind the first logon opened one after another: 2 s a runspace
        # made 40 servers' opens take 80 s.)
        yield

    def _note_refusal(self, server: Server, account: object, creds: Credentials, detail: str) -> None:
        """A server refused an account not yet proven (called under the account's logon lock). The second
        refusal withdraws the account at once, before the lock lets another logon start."""
        with self._lock:
            refused = self._refused.setdefault(account, [])
            if server.name not in refused:
                refused.append(server.name)
            servers = list(refused)
        if len(servers) >= PROOF_LOGONS:
            self._withdraw(server, "connect", account, creds, detail, servers)

    def _withdraw(self, server: Server, what: str, account: object, creds: Credentials, detail: str,
                  servers: list[str]) -> Blind:
        """The account is not used again this run, on any server: refused by `servers` and proven nowhere."""
        who = creds.username or "the account"
        where = " and ".join(servers)
        if len(servers) >= PROOF_LOGONS:
            why = (f"refused by {len(servers)} servers, so the user name or password is wrong (or the account is "
                   "locked out or disabled)")
        else:
            why = "no other server of this run could confirm them"
        reason = (f"authentication failed for {who} on {where}: {detail}; {why}: these credentials are not used "
                  f"again this run, on any server (a lockout policy counts every failed logon; dagcheck stops at "
                  f"{PROOF_LOGONS} per account)")
        return self.states.mark(Blind(server.name, "authentication", what, reason), account=account)

    def _refuse_if_blind(self, server: Server, what: str) -> None:
        """Once a server is unreachable, or its credentials were rejected (here or elsewhere), nothing more is
        sent to it this run: every later call fails at once with the one reason."""
        blind = self.states.refusal(server.name, self._account(server))
        if blind is not None:
            raise ConnectionFailed(server.name, blind.what, blind.reason)

    def _unreachable(self, server: Server, what: str, reason: str) -> ConnectionFailed:
        # A certificate that does not verify is named as TLS, with its fix (dagcheck.remote.diagnosis), not "unreachable".
        kind = "tls" if reason.startswith(diagnosis.TLS_PREFIX) else "unreachable"
        blind = self.states.mark(Blind(server.name, kind, what,
                                       f"{reason}; {server.name} is treated as unreachable for the rest of this run "
                                       "(nothing more is sent to it)"))
        return ConnectionFailed(server.name, blind.what, blind.reason)

    def _rejected(self, server: Server, what: str, detail: str) -> ConnectionFailed:
        """A server refused our credentials. Whether that is the account's fault or the server's is decided
        here, once per server (issue 24, item 2): a wrong password is refused everywhere, a server whose own
        authentication is broken (an Extended Protection / channel-binding mismatch after a CU, a vdir whose
        authentication was reset) refuses alone. So before an account is withdrawn it is proven on one other
        server of the run: at most PROOF_LOGONS failed logons per account. A server that refuses a proven
        account fails only itself. A Kerberos ticket or a client certificate refused by one server is that
        server's failure (item 11): no password was wrong and no lockout counter moved."""
        creds = self._creds(server)
        who = creds.username or "the Kerberos/certificate identity"
        if not _counts_logons(server.connection, creds):
            blind = self.states.mark(Blind(server.name, "authentication", what,
                                           f"authentication failed for {who} on {server.name}: {detail}; only this "
                                           f"server is affected ({server.connection.auth}: no password was refused and "
                                           "no lockout counter moved; the other servers are still tried)"))
            return ConnectionFailed(server.name, blind.what, blind.reason)
        account = account_key(server.connection, creds)
        with self._verdict_lock(server):
            decided = self.states.refusal(server.name)  # another lane of this server found out first
            if decided is None:
                decided = self._verdict(server, what, detail, account, creds)
        return ConnectionFailed(server.name, decided.what, decided.reason)

    def _verdict(self, server: Server, what: str, detail: str, account: object, creds: Credentials) -> Blind:
        with self._lock:
            undecided = account not in self._proven
        if undecided and self.states.refusal(server.name, account) is None:
            self._prove_elsewhere(server, account)
        with self._lock:
            proven_on = self._proven.get(account)
            refused = list(self._refused.get(account, ()))
        if proven_on is not None:
            who = creds.username or "the account"
            return self.states.mark(Blind(
                server.name, "authentication", what,
                f"this server refused a credential that works elsewhere: {who} logged on to {proven_on}, but "
                f"{server.name} answered {detail}. Only {server.name} is affected: check its own authentication "
                "(Extended Protection / channel binding after a CU, the PowerShell virtual directory's "
                "authentication methods, the account's rights on this server)"))
        withdrawn = self.states.refusal(server.name, account)  # marks this server with the account's reason
        if withdrawn is not None:
            return withdrawn
        return self._withdraw(server, what, account, creds, detail, refused or [server.name])

    def _prove_elsewhere(self, refusing: Server, account: object) -> None:
        """Log the account on to another server of the run (its pool is kept for that server's own calls),
        until one accepts it (proven), a second refuses it (withdrawn, by _note_refusal), or PROOF_CANDIDATES
        servers could not tell (unreachable: marked so, as their own first call would have found)."""
        tried = 0
        for candidate in self._proof_candidates(refusing, account):
            with self._lock:
                if account in self._proven or len(self._refused.get(account, ())) >= PROOF_LOGONS:
                    return
            if tried >= PROOF_CANDIDATES:
                return
            tried += 1
            log.info("%s refused the credentials; proving them on %s", refusing.name, candidate.name)
            try:
                self._pool(candidate, Endpoint.EXCHANGE)
                return
            except ConnectionFailed:  # refused (noted), blind, or the account withdrawn meanwhile
                continue
            except (requests.exceptions.RequestException, WinRMError, OSError) as exc:
                self._discard(candidate, Endpoint.EXCHANGE)
                self._unreachable(candidate, "connect", failures.connection_reason(exc))
            except Exception as exc:  # noqa: BLE001 - whatever else stopped that logon, it proves nothing
                self._discard(candidate, Endpoint.EXCHANGE)
                log.info("%s could not prove the credentials: %s: %s", candidate.name, type(exc).__name__, exc)

    def _proof_candidates(self, refusing: Server, account: object) -> list[Server]:
        """The run's other servers that log on with the same account and are not known to be blind."""
        out = []
        for name, server in self.servers.items():
            if name == refusing.name.lower() or (self.scope is not None and name not in self.scope):
                continue
            if self._account(server) != account or self.states.refusal(server.name) is not None:
                continue
            out.append(server)
        return out

    def _verdict_lock(self, server: Server) -> threading.Lock:
        with self._lock:
            return self._verdict_locks.setdefault(server.name.lower(), threading.Lock())

    def _logon(self, server: Server, endpoint: Endpoint, open_: Callable[[], _T]) -> _T:
        """Open a shell (the logon); a refusal is judged at once (_rejected), still under the server's open
        lock, so that its other lanes find the verdict instead of logging on again."""
        try:
            with self._first_logon(server):
                return open_()
        except failures.CAUGHT as exc:
            refusal = _refusal(exc)
            if refusal is None:
                raise
            self._discard(server, endpoint)
            raise self._rejected(server, "connect", refusal) from None

    def _open(self, server: Server, endpoint: Endpoint) -> _Pool:
        pool = RunspacePool(self._wsman(server, endpoint), configuration_name=CONFIGURATION[endpoint],
                            max_runspaces=self._budget(server))
        _install_tolerant_serializer(pool)
        try:
            pool.open()
        except BaseException:
            # Create may have succeeded before the open failed: never leave that shell on the server.
            _close_quietly(pool.shell)
            raise
        return _Pool(pool, threading.Lock())

    def _pool(self, server: Server, endpoint: Endpoint) -> _Pool:
        key = (server.name.lower(), endpoint)
        with self._lock:
            existing = self._pools.get(key)
        if existing is not None:
            return existing
        with self._opening(server):
            self._refuse_if_blind(server, "connect")  # another thread may have found it hung meanwhile
            with self._lock:
                if key in self._pools:
                    return self._pools[key]
            self._make_room(server, key)
            opened = self._open_within_budget(server, endpoint)
            with self._lock:
                self._pools[key] = opened
                return opened

    def _open_within_budget(self, server: Server, endpoint: Endpoint) -> _Pool:
        """Open the pool; if Exchange refuses it over the user's runspace budget ("... exceeded your budget to
        create runspace. Please wait for N seconds.", a Broken RunspacePool state, not a WSMan fault), wait the
        N seconds it names and open again, within the transport's throttling budget (throttle_retries waits,
        each at most MAX_RETRY_AFTER). The server's other calls wait behind its open lock meanwhile, so the
        refusal is not provoked again by each of them. Beyond that budget the server is throttled out for the
        run, with the server's own words as the reason; it is never called unreachable (it answered)."""
        waits = 0
        while True:
            try:
                return self._logon(server, endpoint, lambda: self._open(server, endpoint))
            except InvalidPSRPOperation as exc:
                wait = _budget_wait(str(exc))
                if wait is None:
                    raise
                message = _budget_message(str(exc))
                if wait > MAX_RETRY_AFTER or waits >= self.throttle_retries:
                    why = (f"it asks for {wait:g} s, over the {MAX_RETRY_AFTER:g} s dagcheck waits for a throttled "
                           "server" if wait > MAX_RETRY_AFTER else
                           f"still refused after {waits} wait(s) (the transport's {self.throttle_retries} retries)")
                    blind = self.states.mark(Blind(
                        server.name, "throttled", "connect",
                        f"Exchange refused to create a runspace (its runspace budget, PowerShellMaxRunspaces in "
                        f"the user's throttling policy): {message}; {why}; nothing more is sent to {server.name} "
                        "this run"))
                    raise Throttled(server.name, "connect", blind.reason) from None
                waits += 1
                log.info("%s: %s; waiting %g s before opening again", server.name, message, wait)
                time.sleep(wait)

    def _opening(self, server: Server) -> threading.Lock:
        with self._lock:
            return self._open_locks.setdefault(server.name.lower(), threading.Lock())

    def lanes(self, server: str) -> int:
        known = self.servers.get(server.lower())
        return self._budget(known) if known is not None else 1

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

    def _budget(self, server: Server) -> int:
        """How many calls run on one server at once: connection.max_runspaces, the same per-server budget
        that bounds the shells (a PSRP pool runs that many pipelines side by side). Over HTTP with
        message encryption the NTLM/Kerberos sealing state is sequential, so calls stay one at a time."""
        if server.exchange_uri().startswith("http://") and server.connection.encryption != "never":
            return 1
        return max(1, server.connection.max_runspaces)

    def _lane(self, server: Server) -> threading.BoundedSemaphore:
        with self._lock:
            lane = self._lanes.get(server.name.lower())
            if lane is None:
                lane = self._lanes[server.name.lower()] = threading.BoundedSemaphore(self._budget(server))
            return lane

    def _open_count(self, name: str) -> int:
        with self._lock:
            return sum(1 for s, _ in self._pools if s == name) + (1 if name in self._cmd_shells else 0)

    def _make_room(self, server: Server, key: tuple[str, Endpoint] | str) -> None:
        """Keep within the server's budget (connection.max_runspaces): close an idle shell of ours before
        opening another; if all are busy, wait for one to be free. Caller holds the server's open lock."""
        name = server.name.lower()
        budget = max(1, server.connection.max_runspaces)
        deadline = time.monotonic() + server.connection.operation_timeout
        while self._open_count(name) >= budget:
            victim = self._idle_shell(name, key)
            if victim is not None:
                victim()
                continue
            if time.monotonic() > deadline:
                raise Throttled(server.name, "connect", f"dagcheck's budget of {budget} shell(s) on this server "
                                "(connection.max_runspaces) stayed busy")
            time.sleep(0.05)

    def _idle_shell(self, name: str, keep: tuple[str, Endpoint] | str) -> Callable[[], None] | None:
        """A closer for one of the server's shells that no command is using (its lock taken), or None."""
        with self._lock:
            for pkey, entry in list(self._pools.items()):
                if pkey[0] == name and pkey != keep and entry.active == 0 and entry.lock.acquire(blocking=False):
                    entry.closed = True
                    del self._pools[pkey]
                    return _closer(entry.pool, entry.lock)
            cmd = self._cmd_shells.get(name)
            if cmd is not None and keep != name and cmd[1].acquire(blocking=False):
                del self._cmd_shells[name]
                return _closer(cmd[0], cmd[1])
        return None

    def _discard(self, server: Server, endpoint: Endpoint, close: bool = True) -> None:
        """Forget a broken pool (or WinRS shell). Unless the server has already lost it (close=False), it is
        closed first: a fault we recover from must not leave a shell behind to eat into the user's quota."""
        with self._lock:
            entry = self._pools.pop((server.name.lower(), endpoint), None)
            self._connections.pop((server.name.lower(), endpoint), None)
            cmd = self._cmd_shells.pop(server.name.lower(), None) if endpoint is Endpoint.WINDOWS else None
        if close:
            if entry is not None:
                _close_quietly(entry.pool)
            if cmd is not None:
                _close_quietly(cmd[0])

    # ---- commands --------------------------------------------------------------------------

    def run(self, server_name: str, endpoint: Endpoint, command: Command) -> list[Any]:
        server = self._server(server_name)
        self._refuse_if_blind(server, command.cmdlet)
        with self._lane(server), self.transcript.record(server.name, endpoint, command) as inv:
            result = self._with_retries(server, command.cmdlet, command.is_read,
                                        lambda: self._run_once(server, endpoint, command))
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
                    raise OutcomeUnknown(server.name, what, f"{lost.reason}; it may or may not have run: verify "
                                         "by reading before doing anything else") from None
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
        entry: _Pool | None = None
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
            raise self._failure(server, endpoint, command.cmdlet, exc, sent=sent, requested=requested,
                                established=established) from None
        finally:
            if entry is not None:
                with self._lock:
                    entry.active -= 1
        if ps.streams.error:
            raise _cmdlet_error(server.name, command.cmdlet, ps.streams.error[0])
        raw = [getattr(o, "_xml", None) for o in output]
        if self.raw_sink is not None and all(isinstance(x, str) for x in raw):
            self.raw_sink(server.name, command, raw)  # type: ignore[arg-type]
        try:
            return [_parse_output(o) for o in output]
        except (ResponseRefused, *failures.PARSE_ERRORS) as exc:
            raise self._failure(server, endpoint, command.cmdlet, exc, sent=True, requested=True,
                                established=True) from None

    def _use_pool(self, server: Server, endpoint: Endpoint) -> _Pool:
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
                    raise OutcomeUnknown(server.name, command.cmdlet, f"{reason}; it may or may not have run: verify "
                                         "by reading before doing anything else")
                raise self._unreachable(server, command.cmdlet, reason)
            ps.poll_invoke(timeout=max(1, min(op, int(left + 0.999))))
        return ps.output

    def _failure(self, server: Server, endpoint: Endpoint, what: str, exc: Exception, *, sent: bool,
                 requested: bool, established: bool) -> Exception:
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

    def _cmd_shell(self, server: Server) -> tuple[WinRS, threading.Lock]:
        """One WinRS cmd shell per server, opened on first use and reused (fewer round trips)."""
        key = server.name.lower()
        with self._lock:
            if key in self._cmd_shells:
                return self._cmd_shells[key]
        with self._opening(server):
            with self._lock:
                if key in self._cmd_shells:
                    return self._cmd_shells[key]
            self._make_room(server, key)
            shell = WinRS(self._wsman(server, Endpoint.WINDOWS))
            try:
                self._logon(server, Endpoint.WINDOWS, shell.open)
            except BaseException:
                _close_quietly(shell)
                raise
            with self._lock:
                return self._cmd_shells.setdefault(key, (shell, threading.Lock()))

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
            raise self._failure(server, Endpoint.WINDOWS, command_line, exc, sent=sent, requested=requested,
                                established=established) from None
        return CmdResult(process.rc or 0, process.stdout.decode("utf-8", "replace"),
                         process.stderr.decode("utf-8", "replace"))

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
                raise self._unreachable(server, command_line, f"timed out: {command_line} did not finish within {op} s "
                                        "(connection.operation_timeout); the command was terminated")
            process.poll_invoke(timeout=max(1, min(op, int(left + 0.999))))

    def open_shells(self) -> int:
        """How many shells this transport holds open now (pools and WinRS shells)."""
        with self._lock:
            return len(self._pools) + len(self._cmd_shells)

    def close(self, deadline: float | None = None) -> None:
        """Close every shell this transport opened (also after faults and on Ctrl-C: the session closes the
        transport in pytest_unconfigure, which runs after a KeyboardInterrupt too). The shells it could not
        confirm closed are kept in self.left_open, each named with its server and ShellId (issue 24, item 14).

        The Deletes go out side by side (one thread per connection), and close() waits for them at most
        `deadline` seconds (CLOSE_SECONDS): one server that does not answer its Delete no longer holds up
        the others, one after another. A second Ctrl-C while waiting stops the wait, not the Deletes already
        sent; either way every shell not confirmed closed is named (warning log and self.left_open), so
        that an administrator can remove it (Remove-PSSession, or winrm delete on the ShellId) instead of
        it eating into the account's quota until the server's IdleTimeout."""
        with self._lock:
            jobs: list[tuple[str, Any]] = [(f"{name} {endpoint.value} shell {_shell_id(entry.pool.shell)}", entry.pool)
                    for (name, endpoint), entry in self._pools.items()]
            jobs += [(f"{name} winrs shell {_shell_id(shell)}", shell) for name, (shell, _) in self._cmd_shells.items()]
            self._pools.clear()
            self._cmd_shells.clear()
            self._connections.clear()
        self.left_open = []
        if not jobs:
            return
        closed: dict[str, threading.Event] = {what: threading.Event() for what, _ in jobs}
        wake, interrupted = threading.Event(), threading.Event()
        # One thread per WSMan connection, its shells closed one after another on it: a sealed (NTLM/Kerberos
        # over HTTP) connection's security context numbers its messages in order and cannot take two at once.
        by_connection: dict[int, list[tuple[str, Any]]] = {}
        for what, closable in jobs:
            by_connection.setdefault(id(_wsman_of(closable)), []).append((what, closable))
        pending = [len(by_connection)]

        def close_group(group: list[tuple[str, Any]]) -> None:
            try:
                for what, closable in group:
                    if _close_checked(closable):
                        closed[what].set()
            finally:
                with self._lock:
                    pending[0] -= 1
                    if pending[0] == 0:
                        wake.set()

        def on_sigint(signum: int, frame: Any) -> None:  # Ctrl-C again: stop waiting, wherever it lands
            interrupted.set()
            wake.set()

        limit = CLOSE_SECONDS if deadline is None else deadline
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            for i, group in enumerate(by_connection.values()):
                threading.Thread(target=close_group, args=(group,), name=f"dagcheck-close-{i}", daemon=True).start()
            wake.wait(limit)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        left = [what for what, event in closed.items() if not event.is_set()]
        if left:
            why = "interrupted again while closing" if interrupted.is_set() else f"no answer within {limit:g} s"
            log.warning("%s: %d shell(s) may be left open: %s (they end at the server's IdleTimeout; remove them "
                        "with Remove-PSSession or winrm delete on the ShellId)", why, len(left), "; ".join(left))
        self.left_open = left


def _counts_logons(settings: Any, creds: Credentials) -> bool:
    """Whether a refused logon may be a wrong password that a lockout policy counts: a password was sent
    (Basic, NTLM, Negotiate with a password). A Kerberos ticket or a client certificate refused by a server
    says nothing about the account's password and moves no lockout counter."""
    return settings.auth not in ("kerberos", "certificate") and creds.password is not None


def _refusal(exc: BaseException) -> str | None:
    """The server refused the logon (HTTP 401 after the credentials were sent): its wording, else None."""
    failure = failures.classify(exc)
    return failure.reason if failure is not None and failure.kind is Kind.LOGON_REFUSED else None


def _receive_once(wsman: WSMan) -> None:
    """pypsrp resends a Receive up to 5 times after an HTTP read timeout, sleeping 2 to 62 s in between: a
    server that stopped answering in the middle of a command would be asked six times over two minutes or
    more. dagcheck's own deadline decides instead (_end_invoke, _end_process): one Receive, one HTTP
    timeout, and the server counts as hung for the rest of the run."""

    def receive(resource_uri: str, resource: ET.Element, option_set: Any = None, selector_set: Any = None,
                timeout: int | None = None) -> ET.Element:
        res = wsman.invoke(WSManAction.RECEIVE, resource_uri, resource, option_set, selector_set, timeout,
                           retries_on_read_timeout=0)
        return res.find("s:Body", namespaces=WSMAN_NAMESPACES)  # type: ignore[return-value]

    wsman.receive = receive  # type: ignore[method-assign]


class _ShellLost(Exception):
    """The server no longer has our shell (expired, recycled, rebooted) or dropped an established connection."""

    def __init__(self, reason: str, may_have_run: bool, connection: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.may_have_run, self.connection = reason, may_have_run, connection


def _budget_wait(text: str) -> float | None:
    """The seconds Exchange's runspace budget refusal asks to wait, or None if the text is not that refusal."""
    match = _BUDGET_REFUSAL.search(text)
    return float(match.group(1)) if match else None


def _budget_message(text: str) -> str:
    """The refusal as Exchange words it (pypsrp prefixes "Received a broken RunspacePoolState message: ")."""
    return " ".join(text.split("message: ", 1)[-1].split())[:300]


def _retry_after(reason: str) -> float:
    match = _RETRY_AFTER.search(reason)
    return int(match.group(1)) / 1000 if match else 0.0


def _wsman_of(closable: Any) -> Any:
    """The WSMan connection a RunspacePool (through its shell) or a WinRS shell talks over."""
    shell = getattr(closable, "shell", closable)
    return getattr(shell, "wsman", None) or closable


def _shell_id(shell: Any) -> str:
    return str(getattr(shell, "id", None) or "(not created)")


def _close_checked(closable: Any) -> bool:
    """Close; whether the server confirmed it (a failure is logged, never raised: the verdicts are made)."""
    try:
        closable.close()
        return True
    except Exception as exc:
        log.debug("closing %s failed: %s", type(closable).__name__, exc)
        return False


def _closer(closable: Any, lock: threading.Lock) -> Callable[[], None]:
    def close() -> None:
        try:
            _close_quietly(closable)
        finally:
            lock.release()

    return close


def _close_quietly(closable: Any) -> None:
    """Closing is best effort: the run's verdicts are already made, and a dead server has nothing to close."""
    try:
        closable.close()
    except Exception as exc:
        log.debug("closing %s failed: %s", type(closable).__name__, exc)


class RawClixml:
    """An output object pypsrp 0.9 could not deserialize; psrpcore reads its XML instead."""

    def __init__(self, xml: str) -> None:
        self._xml = xml


class _TolerantSerializer(Serializer):
    """pypsrp 0.9 cannot read generic List`1/MultiValuedProperty contents, and then fails on a later
    <TNRef> to a type first named inside such a list (Get-DatabaseAvailabilityGroup -Status does this:
    ADObjectIds in Servers, then PrimaryActiveManager). Output objects are therefore never deserialized
    by pypsrp: a PIPELINE_OUTPUT (the only message pypsrp hands over as a bare string without metadata)
    is kept as raw XML for psrpcore, which parses it once (dagcheck.clixml). Protocol messages (state,
    error records) still go through pypsrp, one at a time: its serializer keeps per-call state, and the
    pipelines of one pool are received side by side."""

    def __init__(self) -> None:
        super().__init__()
        self._serial = threading.RLock()

    def deserialize(self, element: Any, metadata: Any = None, clear: bool = True) -> Any:
        if isinstance(element, str):
            refuse_dtd(element, "a PSRP message from the server")  # before pypsrp's ET.fromstring
        if metadata is None and clear and isinstance(element, str):
            return RawClixml(element)
        with self._serial:
            try:
                return super().deserialize(element, metadata, clear)
            except (KeyError, SerializationError, AttributeError, TypeError, ValueError):
                if not clear or not isinstance(element, str):
                    raise
                return RawClixml(element)

    def serialize(self, value: Any, metadata: Any = None, parent: Any = None, clear: bool = True) -> Any:
        with self._serial:
            return super().serialize(value, metadata, parent, clear)


_deep_statements = Pipeline._get_statements


def _one_statement(self: Pipeline) -> list[list[Any]]:
    """pypsrp 0.9's Pipeline._get_statements deep-copies every command each time the CreatePipeline
    message is serialized (twice per message): 40 % of the 4.5 ms that serializing one message costs, and
    a third of the client's collection CPU at 300 servers went to these messages. dagcheck's pipelines are
    one statement (a cmdlet, perhaps `| ForEach-Object -MemberName`) and each PowerShell object is invoked
    once, so the commands need no copy: the bytes sent are the same (tests/test_pipeline_message.py). A pipeline
    of several statements keeps pypsrp's own copies."""
    if any(command.end_of_statement for command in self.commands[:-1]):
        return _deep_statements(self)
    self.commands[-1].end_of_statement = True
    return [list(self.commands)]


Pipeline._get_statements = _one_statement


def _install_tolerant_serializer(pool: RunspacePool) -> None:
    # Private attributes of pypsrp 0.9 (pinned <1 in pyproject): the pool's serializer and fragmenter.
    serializer = _TolerantSerializer()
    pool._serializer = serializer
    pool._fragmenter.serializer = serializer


def _parse_output(value: Any) -> Any:
    xml = getattr(value, "_xml", None)
    return from_element_text(xml) if xml else value


def _cmdlet_error(server: str, cmdlet: str, record: Any) -> CmdletFailed:
    message = str(record) or getattr(record, "message", "") or "error"
    category = ERROR_CATEGORIES.get(getattr(record, "category", 0) or 0, "NotSpecified")
    error_id = getattr(record, "fq_error", "") or ""
    if any(marker.lower() in (message + error_id).lower() for marker in THROTTLING_MARKERS):
        return Throttled(server, cmdlet, message, category, error_id)
    return CmdletFailed(server, cmdlet, message, category, error_id)
