"""An append-only journal per server (reports/journal-<server>.jsonl): every step as it happens.

The next run reads it to say where an interrupted transition stands, and to restore the activation
policy the server had before its first entry into maintenance (never blindly Unrestricted).

A damaged journal (not UTF-8, a line cut by a crash, a directory in its place) never stands between an
operator and a rollback: Exchange's state decides where the server stands, the journal only adds what
state cannot say. set_aside_if_damaged() moves the damaged file aside (kept, never deleted), starts a fresh
journal with the entries that could still be read, and says so in one line (Journal.damaged).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagcheck.files import append_private, private_dir, write_private


@dataclass
class Journal:
    path: Path
    damaged: str | None = None  # one line on a damaged journal (set_aside_if_damaged)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_server(cls, directory: str | Path, server: str) -> Journal:
        path = Path(directory) / f"journal-{server.lower()}.jsonl"
        private_dir(path.parent)
        return cls(path)

    def set_aside_if_damaged(self, server: str, move: bool = True) -> str | None:
        """One line on a damaged journal, or None. With move (an --apply run, holding the server's run lock so
        that no other run is writing it), the file is kept aside and a fresh journal holds its readable
        entries; without (a dry-run changes nothing), the line only says what --apply will do."""
        self.damaged = _set_aside_if_damaged(self, server, move)
        return self.damaged

    def append(self, **entry: Any) -> None:
        entry = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **entry}
        line = json.dumps(entry, default=str)
        with self._lock, append_private(self.path) as f:  # owner-only (dagcheck.files)
            f.write(line + "\n")
            f.flush()

    def entries(self) -> list[dict[str, Any]]:
        """The readable entries; never raises for what is in (or in place of) the file."""
        try:
            raw = self.path.read_bytes()
        except OSError:  # missing, or damaged since for_server(): the state read from Exchange decides
            return []
        return _readable(raw)[0]

    def recorded_policy(self) -> str | None:
        """The activation policy recorded by the first entry since the server was last fully back."""
        policy = None
        for e in self.entries():
            if e.get("event") == "policy_recorded" and policy is None:
                policy = e.get("policy")
            if (e.get("event") == "transition_completed" and e.get("direction") == "exit") or e.get("event") == "lease_lost":
                policy = None  # back in service, or a lost lease's claim was undone: the next entry records afresh
        return policy

    def where_it_stands(self) -> str | None:
        """A sentence on an unfinished transition, or None when the last one completed (or there was none)."""
        started = None
        for e in self.entries():
            if e.get("event") == "transition_started":
                started = e
                last_step = None
            elif e.get("event") == "step" and started is not None:
                last_step = e.get("step")
            elif e.get("event") in ("transition_completed", "transition_refused"):
                started = None
        if started is None:
            return None
        return f"the {started.get('direction')} transition started {started.get('time')} did not finish" + (
            f" (last step done: {last_step})" if last_step else " (no step done)"
        )


def _readable(raw: bytes) -> tuple[list[dict[str, Any]], list[int]]:
    """The entries that are whole (UTF-8 JSON objects) and the numbers of the lines that are not."""
    good: list[dict[str, Any]] = []
    bad: list[int] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
            entry = None
        if isinstance(entry, dict):
            good.append(entry)
        else:
            bad.append(number)  # a line cut by a crash mid-write, or not the journal's at all
    return good, bad


def _set_aside_if_damaged(journal: Journal, server: str, move: bool) -> str | None:
    path = journal.path
    if not path.exists() and not path.is_symlink():
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    decides = f"{server}'s state in Exchange decides where it stands"
    if not path.is_file():
        what, good = "is not a file", list[dict[str, Any]]()
    else:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raw, what = b"", f"cannot be read ({exc.strerror or exc})"
        else:
            what = ""
        good, bad = _readable(raw)
        if not what and not bad:
            if move and raw and not raw.endswith(b"\n"):  # whole, but its newline was not written: the
                with path.open("ab") as f:  # next entry would be glued to the last one
                    f.write(b"\n")
            return None
        if not what:
            cut = bad == [raw.rstrip(b"\n").count(b"\n") + 1] and not raw.endswith(b"\n")
            what = (
                "had its last line cut off"
                if cut
                else f"has {len(bad)} unreadable line(s) ({'not UTF-8 or ' if _not_utf8(raw) else ''}not JSON; "
                f"first: line {bad[0]})"
            )
    if not move:
        return f"the journal {path} {what}: --apply keeps it aside and starts a fresh one; {decides}"
    try:
        os.replace(path, aside)
        write_private(path, "".join(json.dumps(e, default=str) + "\n" for e in good))  # atomic, owner-only
    except OSError as exc:
        # Even moving it aside failed: this run journals to a new file beside it, rather than not at all.
        journal.path = path.with_name(f"journal-{server.lower()}-{stamp}.jsonl")
        return (
            f"the journal {path} {what} and could not be moved aside ({exc.strerror or exc}); this run journals "
            f"to {journal.path.name}; {decides}"
        )
    kept = f"; its {len(good)} readable entries were kept" if good else ""
    return f"the journal {path} {what}: kept aside as {aside.name}{kept}; {decides}"


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
