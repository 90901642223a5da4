"""The runspace pools and WinRS shells of PsrpTransport: one pool per server and endpoint, one cmd shell per
server, opened lazily within the server's budget (connection.max_runspaces, and Exchange's runspace budget
when it refuses), the lanes that bound concurrent calls, and closing everything at the end of the run (also
on Ctrl-C) while naming what could not be closed.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pypsrp.exceptions import InvalidPSRPOperation
from pypsrp.powershell import RunspacePool
from pypsrp.shell import WinRS
from pypsrp.wsman import WSMan

from dagcheck.errors import Throttled
from dagcheck.inventory import Server
from dagcheck.remote.base import Blind, Endpoint, Transcript, Transport
from dagcheck.remote.psrp_wire import _install_tolerant_serializer

log = logging.getLogger(__name__)

CONFIGURATION = {Endpoint.EXCHANGE: "Microsoft.Exchange", Endpoint.WINDOWS: "Microsoft.PowerShell"}
_T = TypeVar("_T")
MAX_RETRY_AFTER = 60.0
# How long close() waits for the shells' Deletes, sent side by side, before naming those left open.
CLOSE_SECONDS = 5.0
# Exchange's runspace budget (PowerShellMaxRunspaces per PowerShellMaxRunspacesTimePeriod): "Fail to create
# [a] runspace because you have exceeded your budget to create runspace. Please wait for N seconds."
_BUDGET_REFUSAL = re.compile(r"exceeded your budget to create runspace\.\s*Please wait for (\d+) seconds?", re.IGNORECASE)


@dataclass
class OpenPool:
    """A server endpoint's runspace pool with what the transport needs to share it between pipelines."""

    pool: RunspacePool
    lock: threading.Lock  # taken only to close the pool, and only while no pipeline uses it
    active: int = 0  # pipelines running on it now (guarded by the transport's lock)
    closed: bool = False
    send: threading.Lock = field(default_factory=threading.Lock)  # one Command at a time (shared fragmenter)


class PsrpShells(Transport):
    """The shells half of PsrpTransport: which pools and WinRS shells are open, and how many calls run."""

    def __init__(self, servers: dict[str, Server], transcript: Transcript | None, throttle_retries: int) -> None:
        super().__init__(transcript)
        self.servers = {k.lower(): v for k, v in servers.items()}
        self.throttle_retries = throttle_retries
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, Endpoint], OpenPool] = {}
        self._connections: dict[tuple[str, Endpoint], WSMan] = {}
        self._cmd_shells: dict[str, tuple[WinRS, threading.Lock]] = {}
        self._open_locks: dict[str, threading.Lock] = {}  # one shell opening at a time per server (the budget)
        self._lanes: dict[str, threading.BoundedSemaphore] = {}  # concurrent calls per server (see lanes())

    # ---- what the logon rules and the connections (PsrpLogons, PsrpTransport) provide ------------------

    @abstractmethod
    def _wsman(self, server: Server, endpoint: Endpoint) -> WSMan:
        """The server's WSMan connection for the endpoint (PsrpTransport)."""

    @abstractmethod
    def _logon(self, server: Server, endpoint: Endpoint, open_: Callable[[], _T]) -> _T:
        """Open a shell under the two-logon proof rule (PsrpLogons)."""

    @abstractmethod
    def _refuse_if_blind(self, server: Server, what: str) -> None:
        """ConnectionFailed if the server (or its account) is not to be contacted again (PsrpLogons)."""

    # ---- pools, shells and lanes -------------------------------------------------------------------

    def _open(self, server: Server, endpoint: Endpoint) -> OpenPool:
        pool = RunspacePool(
            self._wsman(server, endpoint), configuration_name=CONFIGURATION[endpoint], max_runspaces=self._budget(server)
        )
        _install_tolerant_serializer(pool)
        try:
            pool.open()
        except BaseException:
            # Create may have succeeded before the open failed: never leave that shell on the server.
            _close_quietly(pool.shell)
            raise
        return OpenPool(pool, threading.Lock())

    def _pool(self, server: Server, endpoint: Endpoint) -> OpenPool:
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

    def _open_within_budget(self, server: Server, endpoint: Endpoint) -> OpenPool:
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
                    why = (
                        f"it asks for {wait:g} s, over the {MAX_RETRY_AFTER:g} s dagcheck waits for a throttled server"
                        if wait > MAX_RETRY_AFTER
                        else f"still refused after {waits} wait(s) (the transport's {self.throttle_retries} retries)"
                    )
                    blind = self.states.mark(
                        Blind(
                            server.name,
                            "throttled",
                            "connect",
                            f"Exchange refused to create a runspace (its runspace budget, PowerShellMaxRunspaces in "
                            f"the user's throttling policy): {message}; {why}; nothing more is sent to {server.name} "
                            "this run",
                        )
                    )
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
                raise Throttled(
                    server.name,
                    "connect",
                    f"dagcheck's budget of {budget} shell(s) on this server (connection.max_runspaces) stayed busy",
                )
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
            jobs: list[tuple[str, Any]] = [
                (f"{name} {endpoint.value} shell {_shell_id(entry.pool.shell)}", entry.pool)
                for (name, endpoint), entry in self._pools.items()
            ]
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
            log.warning(
                "%s: %d shell(s) may be left open: %s (they end at the server's IdleTimeout; remove them "
                "with Remove-PSSession or winrm delete on the ShellId)",
                why,
                len(left),
                "; ".join(left),
            )
        self.left_open = left


def _budget_wait(text: str) -> float | None:
    """The seconds Exchange's runspace budget refusal asks to wait, or None if the text is not that refusal."""
    match = _BUDGET_REFUSAL.search(text)
    return float(match.group(1)) if match else None


def _budget_message(text: str) -> str:
    """The refusal as Exchange words it (pypsrp prefixes "Received a broken RunspacePoolState message: ")."""
    return " ".join(text.split("message: ", 1)[-1].split())[:300]


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
