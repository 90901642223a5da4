"""The shells one simulated server holds: who owns them, when they were last used, and their quotas.

A real server's shells end: the user closes them (Delete), they sit idle past IdleTimeOut, the
PowerShell application pool recycles (every /PowerShell shell gone), the server reboots (all gone).
The table is the one place that knows which shells exist, so the wire server can answer a lost shell
the way Windows does, count shells per user against the quotas, and list them for WSMan Enumerate.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from psrpcore import ServerRunspacePool

EXCHANGE_PATH = "/powershell"  # IIS-hosted: Exchange's throttling policy counts its runspaces
WSMAN_PATH = "/wsman"  # the WinRM service: MaxShellsPerUser counts its shells


@dataclass
class Shell:
    """One client runspace pool: psrpcore's state machine plus per-target outboxes for Receive."""

    shell_id: str
    endpoint: str
    server_name: str
    pool: ServerRunspacePool
    owner: str = ""
    path: str = EXCHANGE_PATH
    resource: str = ""
    max_fragment: int = 0  # the largest Receive payload the client's MaxEnvelopeSize leaves room for
    idle_timeout: float | None = None  # the IdleTimeOut the client asked for in Create (None: the server's)
    # Per target (None: the pool), payloads as psrpcore made them: whole PSRP fragments each.
    outbox: dict[uuid.UUID | None, list[bytes]] = field(default_factory=dict)
    done: set[uuid.UUID] = field(default_factory=set)
    stopped: set[uuid.UUID] = field(default_factory=set)
    cond: threading.Condition = field(default_factory=threading.Condition)
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    receiving: int = 0  # Receives being held now: a shell waiting on a long poll is not idle

    def flush(self) -> None:
        """Move what psrpcore has queued into the outbox of its target (pool or pipeline). Hold cond."""
        amount = self.max_fragment or None
        while (payload := self.pool.data_to_send(amount)) is not None:
            self.outbox.setdefault(payload.pipeline_id, []).append(payload.data)
        self.cond.notify_all()

    def take(self, target: uuid.UUID | None, budget: int) -> list[bytes]:
        """Whole payloads for one target, as many as fit in budget bytes together (at least one), each for
        its own rsp:Stream as Windows sends them. Hold cond."""
        queue = self.outbox.get(target) or []
        out: list[bytes] = []
        while queue and (not out or sum(map(len, out)) + len(queue[0]) <= budget):
            out.append(queue.pop(0))
        return out


@dataclass
class CmdShell:
    """A WinRS cmd shell: commands run at once; their (exit code, stdout, stderr) wait for Receive."""

    shell_id: str
    server_name: str
    owner: str = ""
    path: str = WSMAN_PATH
    resource: str = ""
    results: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    ready_at: dict[str, float] = field(default_factory=dict)  # a slow command's result shows from then on
    idle_timeout: float | None = None  # the IdleTimeOut the client asked for in Create (None: the server's)
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)


AnyShell = Shell | CmdShell


class ShellTable:
    """The shells of one simulated server, keyed by ShellId (upper case, as Windows prints them)."""

    def __init__(self) -> None:
        self._shells: dict[str, AnyShell] = {}
        self._lock = threading.Lock()

    def add(self, shell: AnyShell, limit: int, refuse: Callable[[int], Exception]) -> None:
        """Register a new shell unless its owner already holds `limit` on the same path (0: no limit)."""
        with self._lock:
            held = sum(1 for s in self._shells.values() if s.owner == shell.owner and s.path == shell.path)
            if limit and held >= limit:
                raise refuse(limit)
            self._shells[shell.shell_id.upper()] = shell

    def get(self, shell_id: str | None) -> AnyShell | None:
        with self._lock:
            shell = self._shells.get((shell_id or "").upper())
            if shell is not None:
                shell.last_used = time.monotonic()
            return shell

    def remove(self, shell_id: str) -> AnyShell | None:
        with self._lock:
            return self._shells.pop(shell_id.upper(), None)

    def drop(self, keep: Callable[[AnyShell], bool] = lambda s: False) -> int:
        """Forget every shell `keep` does not keep (a recycle, a reboot); returns how many went."""
        with self._lock:
            gone = [self._shells.pop(k) for k, s in list(self._shells.items()) if not keep(s)]
        for shell in gone:  # a Receive held on a shell that is gone answers at once
            if isinstance(shell, Shell):
                with shell.cond:
                    shell.cond.notify_all()
        return len(gone)

    def expire_idle(self, timeout: float, cap: float | None = None) -> int:
        """IdleTimeOut: shells nobody used for their IdleTimeOut are gone. A shell whose client asked for its
        own IdleTimeOut in Create keeps that one (bounded by `cap`, the server's maximum); the others have
        the server's `timeout`."""
        now = time.monotonic()

        def keep(s: AnyShell) -> bool:
            limit = timeout if s.idle_timeout is None else min(s.idle_timeout, cap if cap is not None else s.idle_timeout)
            return now - s.last_used < limit or getattr(s, "receiving", 0) > 0

        return self.drop(keep)

    def list(self, path: str | None = None, owner: str | None = None) -> list[AnyShell]:
        with self._lock:
            return [
                s
                for s in self._shells.values()
                if (path is None or s.path == path) and (owner is None or s.owner.lower() == owner.lower())
            ]
