"""What every transport offers (the declared seam, Transport), and the transcript of what was run (the report
shows it)."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from dagcheck.errors import ConnectionFailed, Throttled


class Endpoint(str, Enum):  # noqa: UP042 - StrEnum would change str() and format() of a member
    EXCHANGE = "exchange"  # https://<fqdn>/PowerShell, configuration Microsoft.Exchange
    WINDOWS = "windows"  # https://<fqdn>:5986/wsman, default configuration
    WINRS = "winrs"  # the same /wsman, a cmd shell: Windows command lines (reg.exe, sc.exe, fsutil)


@dataclass(frozen=True)
class CmdResult:
    """What a Windows command line gave back."""

    rc: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Command:
    """One cmdlet with its named parameters, optionally piped into ForEach-Object -MemberName."""

    cmdlet: str
    parameters: tuple[tuple[str, Any], ...] = ()
    member: str | None = None

    @classmethod
    def of(cls, cmdlet: str, member: str | None = None, **parameters: Any) -> Command:
        return cls(cmdlet, tuple(parameters.items()), member)

    def params(self) -> dict[str, Any]:
        return dict(self.parameters)

    @property
    def is_read(self) -> bool:
        """Get-/Test- cmdlets only read: safe to run again after a lost shell. Anything else (Set-,
        Suspend-, Move-, Redirect-, ...) may change the server and is never repeated by the transport."""
        return self.cmdlet.split("-", 1)[0].lower() in READ_VERBS

    def render(self) -> str:
        """The command as an administrator would type it (for dry-runs and the transcript)."""
        parts = [self.cmdlet]
        for name, value in self.parameters:
            if value is True:
                parts.append(f"-{name}:$true" if name not in SWITCHES else f"-{name}")
            elif value is False:
                parts.append(f"-{name}:$false")
            else:
                text = str(value)
                parts.append(f"-{name} {text}" if text.replace(".", "").replace("-", "").isalnum() else f"-{name} '{text}'")
        line = " ".join(parts)
        return f"{line} | ForEach-Object {self.member}" if self.member else line


READ_VERBS = frozenset({"get", "test"})
SWITCHES = frozenset({"Status", "Force", "Active", "ADPropertiesOnly", "PassThru", "ShowMailboxVirtualDirectories"})


@dataclass
class Invocation:
    """A record of one remote call, kept for the report's transcript."""

    server: str
    endpoint: Endpoint
    command: Command
    started: float
    duration: float = 0.0
    outcome: str = "running"  # ok, error, unreachable, throttled
    objects: int = 0
    message: str = ""


@dataclass
class Transcript:
    """Every invocation of the run, in order; thread-safe because collection runs in parallel."""

    invocations: list[Invocation] = field(default_factory=list)
    listeners: list[Any] = field(default_factory=list, repr=False)  # called with each finished Invocation
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # (server, rendered command) -> its invocations: the report asks per check item, which must not
    # scan the whole run's transcript each time (quadratic at hundreds of servers).
    _index: dict[tuple[str, str], list[Invocation]] = field(default_factory=dict, repr=False)

    @contextmanager
    def record(self, server: str, endpoint: Endpoint, command: Command) -> Iterator[Invocation]:
        inv = Invocation(server, endpoint, command, time.time())
        with self._lock:
            self.invocations.append(inv)
            self._index.setdefault((server.lower(), command.render()), []).append(inv)
        start = time.perf_counter()
        try:
            yield inv
        except Exception as exc:
            inv.outcome = (
                "throttled" if isinstance(exc, Throttled) else "unreachable" if isinstance(exc, ConnectionFailed) else "error"
            )
            inv.message = str(exc)
            raise
        else:
            inv.outcome = "ok"
        finally:
            inv.duration = time.perf_counter() - start
            for listener in list(self.listeners):
                listener(inv)

    def for_server(self, server: str) -> list[Invocation]:
        with self._lock:
            return [i for i in self.invocations if i.server.lower() == server.lower()]

    def matching(self, server: str, lines: list[str]) -> list[Invocation]:
        """The server's invocations of these command lines (as Command.render() gives them), in order."""
        with self._lock:
            found = [i for line in dict.fromkeys(lines) for i in self._index.get((server.lower(), line), ())]
        return sorted(found, key=lambda i: i.started)

    def count(self, cmdlet: str | None = None, server: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for i in self.invocations
                if (cmdlet is None or i.command.cmdlet.lower() == cmdlet.lower())
                and (server is None or i.server.lower() == server.lower())
            )


# ---- per-run server states: fail fast, never lock an account out --------------------------------

BLIND_KINDS = ("unreachable", "authentication", "throttled", "tls")  # tls: a certificate that does not verify


@dataclass(frozen=True)
class Blind:
    """Why a server could not be checked in this run: unreachable (refused, dropped at connect, hung),
    authentication (its credentials were rejected, here or on another server), throttled (a budget
    that never freed). The reason is the one every affected check fails with."""

    server: str
    kind: str
    what: str  # the cmdlet or command line that found out
    reason: str


@dataclass
class ServerStates:
    """What the transport learnt about servers during this run, shared by every thread.

    unreachable and authentication are sticky: the first connect failure or timeout, or the first
    rejected logon, ends all contact with that server (or, for credentials, with every server that uses
    them) for the rest of the run, so a hung server costs one timeout and a wrong password one failed
    logon, not one per source. throttled is only remembered (for the exit code): the server answered."""

    _sticky: dict[str, Blind] = field(default_factory=dict)
    _bad_accounts: dict[Any, Blind] = field(default_factory=dict)
    _seen: dict[str, Blind] = field(default_factory=dict)
    listeners: list[Any] = field(default_factory=list)  # called with each Blind the first time it is noted
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def mark(self, blind: Blind, account: Any = None, sticky: bool = True) -> Blind:
        """Note a server as blind; the first reason wins. account: the credentials key to mark bad."""
        with self._lock:
            first = blind.server.lower() not in self._seen
            if sticky:
                blind = self._sticky.setdefault(blind.server.lower(), blind)
            if account is not None:
                self._bad_accounts.setdefault(account, blind)
            self._seen.setdefault(blind.server.lower(), blind)
        if first:
            for listener in list(self.listeners):
                listener(blind)
        return blind

    def refusal(self, server: str, account: Any = None) -> Blind | None:
        """The sticky reason not to contact this server (or to use this account) again, if any."""
        with self._lock:
            found = self._sticky.get(server.lower())
            if found is None and account is not None:
                found = self._bad_accounts.get(account)
        if found is not None and found.server.lower() != server.lower():
            # Another server rejected these credentials: this one is blind for that same reason.
            self.mark(Blind(server, found.kind, found.what, found.reason), sticky=True)
        return found

    def blind(self) -> dict[str, Blind]:
        """Every server that could not be (fully) checked, by lower-case name."""
        with self._lock:
            return dict(self._seen)


# ---- the HTTPS requests a transport makes for the protocols' health pages --------------------------


@dataclass(frozen=True)
class HttpAnswer:
    """What one GET gave: the status and the start of the body, or why there was no answer."""

    url: str
    status: int | None  # None: no HTTP answer at all (refused, reset, TLS failure, timeout)
    seconds: float
    body: str
    error: str | None = None


class Getter(Protocol):
    """GETs against one server's front end (dagcheck.remote.https): live, saved for --replay, or replayed."""

    def get(self, path: str) -> HttpAnswer: ...


# ---- the seam -------------------------------------------------------------------------------------


class Transport(ABC):
    """Everything the rest of dagcheck may ask of a transport: nothing is probed with getattr/hasattr.

    A transport runs one command on one server's endpoint and returns deserialized objects, or raises a
    RemoteError (dagcheck.errors). Besides run/run_cmd/close, every transport carries the run's transcript
    and server states and the notices the report prints; the capabilities only some transports have (lanes,
    a call's time bound, HTTPS requests, the run's scope) have a real default here, which says what a
    transport without that capability means. Transports are chosen from the settings by
    dagcheck.remote.registry."""

    # Whether calls reach the servers now (timed: a clock reading has before/after), or are answered from
    # saved data or in process.
    live: bool = False

    def __init__(self, transcript: Transcript | None = None) -> None:
        self.transcript = transcript or Transcript()
        # What the transport learnt about servers during this run (blind ones); one that never marks a server
        # blind keeps this empty: every server could be checked.
        self.states = ServerStates()
        self.unverified_tls: set[str] = set()  # servers reached without TLS verification (end-of-run warning)
        self.cleartext: set[str] = set()  # servers reached in clear (allow_cleartext): console, summary, mail
        self.left_open: list[str] = []  # shells close() could not confirm closed, by server and ShellId
        # --save: called with the CLIXML of each command's output objects as the server sent them; a transport
        # that does not keep the raw CLIXML never calls it (SavingTransport then serializes the objects again).
        self.raw_sink: Callable[[str, Command, list[str]], None] | None = None
        # The servers of this run (the session's scope); None: every server the transport knows.
        self.scope: set[str] | None = None

    @abstractmethod
    def run(self, server: str, endpoint: Endpoint, command: Command) -> list[Any]:
        """The output objects of one command on one server's endpoint, or a RemoteError."""

    @abstractmethod
    def run_cmd(self, server: str, command_line: str) -> CmdResult:
        """A Windows command line's result (WinRS on the Windows endpoint), or a RemoteError."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection and shell; never raises for a server that is gone."""

    def lanes(self, server: str) -> int:
        """How many calls one server takes at once. Default: one at a time."""
        return 1

    def call_bound(self, server: str, is_read: bool) -> float | None:
        """The seconds after which the transport gives up a call on this server (for progress lines).
        Default: None, the transport sets no bound of its own."""
        return None

    def https(self, server: str) -> Getter:
        """The HTTPS client for one server's health pages, with its TLS settings. Default: none."""
        raise ConnectionFailed(server, "Invoke-WebRequest", "this transport makes no HTTPS request")

    def limit_to(self, servers: set[str]) -> None:
        """The run's servers (lower-case names): a transport that asks other servers (to prove an account)
        asks only these."""
        self.scope = set(servers)
