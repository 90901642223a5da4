"""A lab that outlives its process: the simulated organisation (servers, databases, queues, component
states with their timestamps, faults, the lab clock) saved as JSON, and an inventory pointing at it.

`python -m dagcheck.lab serve --state FILE` loads FILE when it exists and saves it after every call
that reached the organisation (a background saver notices each call within 50 ms) and at stop, so
that enter-today/leave-tomorrow, resume after a crash and two concurrent operators can be rehearsed as
separate processes. Files are written atomically (a temporary file in the same folder, then
os.replace): a lab killed mid-save leaves the previous state, never half of one.

The JSON is a generic encoding of the state's dataclasses; on load only classes of the lab's own
modules are rebuilt, so a state file cannot name arbitrary code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from dagcheck.lab.clock import LabClock
from dagcheck.lab.state import Organization

FORMAT = 1
ALLOWED_MODULES = ("dagcheck.lab.",)
# Classes saved under an older home: a state file written before the lab owned its settings, or before its
# objects left dagcheck.lab.state for dagcheck.lab.objects, still loads.
MOVED: dict[str, str] = {
    "dagcheck.inventory:Fault": "dagcheck.lab.settings:Fault",
    **{
        f"dagcheck.lab.state:{name}": f"dagcheck.lab.objects:{name}"
        for name in (
            "IisApplication",
            "LabReceiveConnector",
            "LabCertificate",
            "LabAuthConfig",
            "RequesterEntry",
            "LabQueue",
            "LabServer",
            "LabCopy",
            "LabDatabase",
            "LabDag",
        )
    },
}
NOT_SAVED = ("lock", "clock", "call_log", "fault_hits", "flow")  # flow: rebuilt by the first tick


class StateFileError(Exception):
    """The state file cannot be read back; the message names the file and why."""


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, set | frozenset):
        return {"$set": sorted((_encode(v) for v in value), key=json.dumps)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"$map": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"$dc": f"{cls.__module__}:{cls.__qualname__}", "f": {k: _encode(v) for k, v in vars(value).items()}}
    raise TypeError(f"the lab state holds a {type(value).__name__}, which cannot be saved")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$dt" in value:
        return dt.datetime.fromisoformat(value["$dt"])
    if "$uuid" in value:
        return uuid.UUID(value["$uuid"])
    if "$tuple" in value:
        return tuple(_decode(v) for v in value["$tuple"])
    if "$set" in value:
        return {_decode(v) for v in value["$set"]}
    if "$map" in value:
        return {_decode(k): _decode(v) for k, v in value["$map"]}
    if "$dc" in value:
        saved: str = value["$dc"]
        module, _, qualname = MOVED.get(saved, saved).partition(":")
        if not module.startswith(ALLOWED_MODULES):
            raise StateFileError(f"class {value['$dc']} is not part of the lab")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if not dataclasses.is_dataclass(cls):
            raise StateFileError(f"{value['$dc']} is not a lab data class")
        obj = object.__new__(cls)
        for k, v in value["f"].items():
            object.__setattr__(obj, k, _decode(v))  # frozen data classes too
        for f in dataclasses.fields(cls):  # a field added since the file was saved: its default
            if f.name not in value["f"] and f.default is not dataclasses.MISSING:
                object.__setattr__(obj, f.name, f.default)
            elif f.name not in value["f"] and f.default_factory is not dataclasses.MISSING:
                object.__setattr__(obj, f.name, f.default_factory())
        return obj
    raise StateFileError(f"unknown value {sorted(value)[:3]}")


def dump(org: Organization, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The organisation as JSON-ready data (call under org.lock for a consistent picture)."""
    fields = {k: _encode(v) for k, v in vars(org).items() if k not in NOT_SAVED}
    # Throttling counters are keyed by id() of their fault: save them by the fault's position instead.
    hits = {str(i): org.fault_hits[id(f)] for i, f in enumerate(org.runtime_faults) if id(f) in org.fault_hits}
    return {"format": FORMAT, "clock": org.clock.now().isoformat(), "fault_hits": hits, "org": fields, **(extra or {})}


def restore(data: dict[str, Any]) -> Organization:
    if data.get("format") != FORMAT:
        raise StateFileError(f"format {data.get('format')!r}, expected {FORMAT}")
    org = object.__new__(Organization)
    for k, v in data["org"].items():
        setattr(org, k, _decode(v))
    org.lock = threading.RLock()
    org.clock = LabClock(dt.datetime.fromisoformat(data["clock"]))
    org.call_log = []
    org.fault_hits = {
        id(org.runtime_faults[int(i)]): n for i, n in data.get("fault_hits", {}).items() if int(i) < len(org.runtime_faults)
    }
    return org


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> tuple[Organization, dict[str, Any]]:
    """The organisation saved in `path`, and the file's other entries (e.g. the ports it served on)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return restore(data), data
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ImportError) as exc:
        raise StateFileError(f"{path}: cannot load the lab state ({type(exc).__name__}: {exc})") from exc


class Saver:
    """Saves the organisation after every call that reached it, once more at stop, and when asked
    (`python -m dagcheck.lab serve` asks on SIGUSR1): whoever reads the state file from outside the lab's
    process can then wait for a save made after the moment it asked, instead of guessing how long the
    saver takes."""

    def __init__(self, org: Organization, path: Path, extra: dict[str, Any], interval: float = 0.05) -> None:
        self.org, self.path, self.extra, self.interval = org, path, extra, interval
        self._stop = threading.Event()
        self._asked = threading.Event()
        self._seen: tuple[int, dt.datetime] | None = None
        self._thread = threading.Thread(target=self._loop, name="lab-state-saver", daemon=True)

    def start(self) -> Saver:
        self.save()
        self._thread.start()
        return self

    def _marker(self) -> tuple[int, dt.datetime]:
        return len(self.org.call_log), self.org.clock.now()

    def save(self) -> None:
        with self.org.lock:
            marker = self._marker()
            text = json.dumps(dump(self.org, self.extra))
        write_atomically(self.path, text)
        self._seen = marker

    def ask(self) -> None:
        """Save at the next tick even if nothing changed (safe from a signal handler: it only sets an event)."""
        self._asked.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self._asked.is_set() or self._marker() != self._seen:
                self._asked.clear()  # before saving: a request made during this save gets a save of its own
                self.save()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.save()


USERNAME_ENV = "DAGCHECK_LAB_USERNAME"
PASSWORD_ENV = "DAGCHECK_LAB_PASSWORD"


def inventory_for(raw: dict[str, Any], exchange_uri: Any, windows_uri: Any, ca_bundle: str | None, auth: str) -> dict[str, Any]:
    """The inventory of a running lab: the source inventory without its lab: section (so dagcheck
    connects instead of starting a lab of its own), each server's endpoints pointing at the lab, and
    credentials named by environment variables, never written."""
    out = {k: v for k, v in raw.items() if k != "lab"}
    servers = []
    for s in raw["servers"]:
        https = exchange_uri(s["name"]).startswith("https://")
        conn = {
            "exchange_uri": exchange_uri(s["name"]),
            "windows_uri": windows_uri(s["name"]),
            "auth": auth,
            "username_env": USERNAME_ENV,
            "password_env": PASSWORD_ENV,
            # the lab has no WSMan message encryption: over HTTP (loopback only) it must be off
            "encryption": "auto" if https else "never",
            "operation_timeout": 20,
            "read_timeout": 30,
            # the protocols' health pages: the same simulated server's listener
            "health_uri": exchange_uri(s["name"]).rsplit("/", 1)[0],
        }
        if https and ca_bundle:
            conn["ca_bundle"] = ca_bundle
        servers.append({**s, "connection": conn})
    out["servers"] = servers
    if servers:
        # The same settings for every server, and a name-to-endpoint map by FQDN: what `dagcheck discover` needs
        # to reach the servers it finds by name (a seed listing one server is enough), and what it copies into
        # the inventory it writes, so that the discovered inventory works against this lab unchanged.
        own = ("exchange_uri", "windows_uri", "health_uri")  # each simulated server's own listener
        common = {k: v for k, v in servers[0]["connection"].items() if k not in own}
        out["connection"] = {
            **(raw.get("connection") or {}),
            **common,
            "endpoints": {s["fqdn"]: {k: s["connection"][k] for k in own} for s in servers},
        }
    return out
