"""One transition per server per reports folder at a time: an exclusive lock file beside the journal.

`os.open(O_CREAT | O_EXCL)` is atomic on POSIX and Windows alike (no fcntl/msvcrt split). The file holds
the owner's pid, host and start time; a lock whose owner is a dead process on this host (a run killed
with kill -9) is stale and taken over. Runs from other hosts or folders are kept apart by the lease in
Exchange's own state (lease.py), not by this file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from dagcheck.files import create_exclusive


class LockBusy(Exception):
    """Another live run holds the lock; the message says who and since when."""


def _alive(pid: int) -> bool:
    if os.name == "nt":  # guessed safe default: without a portable probe, a Windows owner counts as alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunLock:
    path: Path
    held: bool = False

    @classmethod
    def beside(cls, journal_path: Path) -> RunLock:
        return cls(journal_path.with_name(journal_path.name + ".lock"))

    def acquire(self) -> None:
        for _ in range(3):
            try:
                fd = create_exclusive(self.path)  # O_CREAT | O_EXCL, owner-only (dagcheck.files)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and self._stale(owner):
                    self.path.unlink(missing_ok=True)
                    continue
                who = (
                    f"pid {owner.get('pid')} on {owner.get('host')}, since {owner.get('since')}"
                    if owner
                    else "an owner that has not written its name yet"
                )
                raise LockBusy(
                    f"another dagcheck run ({who}) is running a transition on this server from this "
                    "reports folder; wait for it to finish, or, if that process is gone, "
                    f"remove {self.path}"
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(
                    {
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    },
                    f,
                )
            self.held = True
            return
        raise LockBusy(f"could not take {self.path}: it keeps reappearing")

    def _owner(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None  # being written right now, or damaged: not provably stale

    @staticmethod
    def _stale(owner: dict) -> bool:
        pid = owner.get("pid")
        return owner.get("host") == socket.gethostname() and isinstance(pid, int) and pid != os.getpid() and not _alive(pid)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
