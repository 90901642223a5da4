"""Who PsrpTransport may still contact, and the two-logon proof (issue 24, item 2): an account refused by one
server is proven on a second before it is withdrawn, so a wrong password costs at most PROOF_LOGONS failed
logons per run and a server whose own authentication is broken fails only itself. Also the run's sticky
verdicts: a server found unreachable or hung is not contacted again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import requests
from pypsrp.exceptions import WinRMError

from dagcheck.errors import ConnectionFailed
from dagcheck.inventory import Server
from dagcheck.remote import diagnosis, failures
from dagcheck.remote.base import Blind, Endpoint, Transcript
from dagcheck.remote.credentials import CredentialCache, Credentials, account_key
from dagcheck.remote.failures import Kind
from dagcheck.remote.psrp_shells import PsrpShells

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# Failed logons per account per run before it is withdrawn everywhere: one server may refuse alone (its own
# authentication broken), so a refusal is proven on a second server first (issue 24, item 2).
PROOF_LOGONS = 2
# Servers tried for that proof that could not tell (unreachable) before the account is given up.
PROOF_CANDIDATES = 3


class PsrpLogons(PsrpShells):
    """The logon half of PsrpTransport: credentials, the proof of an account, and the per-server verdicts."""

    def __init__(
        self,
        servers: dict[str, Server],
        transcript: Transcript | None,
        credentials: dict[str, Credentials] | None,
        throttle_retries: int,
    ) -> None:
        super().__init__(servers, transcript, throttle_retries)
        self._credentials = {k.lower(): v for k, v in (credentials or {}).items()}
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

    def _withdraw(self, server: Server, what: str, account: object, creds: Credentials, detail: str, servers: list[str]) -> Blind:
        """The account is not used again this run, on any server: refused by `servers` and proven nowhere."""
        who = creds.username or "the account"
        where = " and ".join(servers)
        if len(servers) >= PROOF_LOGONS:
            why = (
                f"refused by {len(servers)} servers, so the user name or password is wrong (or the account is "
                "locked out or disabled)"
            )
        else:
            why = "no other server of this run could confirm them"
        reason = (
            f"authentication failed for {who} on {where}: {detail}; {why}: these credentials are not used "
            f"again this run, on any server (a lockout policy counts every failed logon; dagcheck stops at "
            f"{PROOF_LOGONS} per account)"
        )
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
        blind = self.states.mark(
            Blind(
                server.name,
                kind,
                what,
                f"{reason}; {server.name} is treated as unreachable for the rest of this run (nothing more is sent to it)",
            )
        )
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
            blind = self.states.mark(
                Blind(
                    server.name,
                    "authentication",
                    what,
                    f"authentication failed for {who} on {server.name}: {detail}; only this "
                    f"server is affected ({server.connection.auth}: no password was refused and "
                    "no lockout counter moved; the other servers are still tried)",
                )
            )
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
            return self.states.mark(
                Blind(
                    server.name,
                    "authentication",
                    what,
                    f"this server refused a credential that works elsewhere: {who} logged on to {proven_on}, but "
                    f"{server.name} answered {detail}. Only {server.name} is affected: check its own authentication "
                    "(Extended Protection / channel binding after a CU, the PowerShell virtual directory's "
                    "authentication methods, the account's rights on this server)",
                )
            )
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


def _counts_logons(settings: Any, creds: Credentials) -> bool:
    """Whether a refused logon may be a wrong password that a lockout policy counts: a password was sent
    (Basic, NTLM, Negotiate with a password). A Kerberos ticket or a client certificate refused by a server
    says nothing about the account's password and moves no lockout counter."""
    return settings.auth not in ("kerberos", "certificate") and creds.password is not None


def _refusal(exc: BaseException) -> str | None:
    """The server refused the logon (HTTP 401 after the credentials were sent): its wording, else None."""
    failure = failures.classify(exc)
    return failure.reason if failure is not None and failure.kind is Kind.LOGON_REFUSED else None
