"""An append-only journal per server (reports/journal-<server>.jsonl): every step as it happens.

The next run reads it to say where an interrupted transition stands, and to restore the activation
policy the server had before its first entry into maintenance (never blindly Unrestricted).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Journal:
    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_server(cls, directory: str | Path, server: str) -> Journal:
        path = Path(directory) / f"journal-{server.lower()}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def append(self, **entry: Any) -> None:
        entry = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **entry}
        line = json.dumps(entry, default=str)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash mid-write: the state read at the next run decides
        return out

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
        return (f"the {started.get('direction')} transition started {started.get('time')} did not finish"
                + (f" (last step done: {last_step})" if last_step else " (no step done)"))
