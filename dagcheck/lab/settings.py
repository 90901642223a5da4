"""The lab's own part of an inventory (its `lab:` section): validated against the lab's schema and parsed here.

The product keeps the section raw (dagcheck.inventory.Inventory.lab) and never interprets it: which fault
kinds exist, what a database layout or a latency means, is the lab's business. The section's schema is
inventory/lab.schema.json, beside the product's; the inventory loader calls parse_lab_section once at load
(so that a bad lab section fails before any connection, naming the field and the file), and the lab reads
its settings with lab_settings() when it builds the organisation it serves.

This module imports nothing of the product but its error type, paths and schema reporting: the loader
imports it, so it must not import the loader back.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonschema

from dagcheck import paths, validation
from dagcheck.errors import InventoryError

SECTION = "lab"  # the inventory key of the lab's section, which heads every error path
SCHEMA_HINT = " (the lab's settings: inventory/lab.schema.json)"


@dataclass(frozen=True)
class Fault:
    """One injected lab fault: a kind and its parameters, as written in the inventory or by a test."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


@dataclass(frozen=True)
class DatabaseLayout:
    """A mailbox database as the inventory lays it out: its copies' servers in activation preference order
    (the first is active) and the lagged ones. The simulated database itself is dagcheck.lab.objects.LabDatabase."""

    name: str
    copies: tuple[str, ...]
    lagged: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LabLatency:
    """Seconds the lab spends where a real server would, so that scheduling can be measured against
    realistic timing (benchmarks/fleet.py). jitter: up to that much more, uniformly at random."""

    runspace_open: float = 0.0
    cmdlet: float = 0.0
    test_cmdlet: float = 0.0
    winrs: float = 0.0
    jitter: float = 0.0


@dataclass(frozen=True)
class LabSettings:
    """The lab's section of an inventory, parsed."""

    build: str | None = None  # None: the lab's own default (Exchange SE)
    builds: dict[str, str] = field(default_factory=dict)  # per-server overrides (mixed-version DAGs), lower-case keys
    databases: tuple[DatabaseLayout, ...] = ()
    faults: tuple[Fault, ...] = ()
    object_shape: str = "remote"  # how the lab serializes Exchange objects: "remote" (a /PowerShell client's view) or "live"
    latency: LabLatency | None = None  # None: the lab answers as fast as it can


class _NamedServer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dag(self) -> str | None: ...


class InventoryView(Protocol):
    """What the lab reads of a loaded inventory to parse its own section (dagcheck.inventory.Inventory is one)."""

    @property
    def file(self) -> str: ...

    @property
    def lab(self) -> Mapping[str, Any] | None: ...

    @property
    def servers(self) -> Sequence[_NamedServer]: ...


def lab_settings(inventory: InventoryView) -> LabSettings:
    """The lab's settings of a loaded inventory; an inventory without a lab section gets the defaults."""
    servers = {s.name.lower(): s.dag for s in inventory.servers}
    return parse_lab_section(inventory.lab or {}, servers, inventory.file)


def parse_lab_section(raw: Mapping[str, Any], servers: Mapping[str, str | None], file: str) -> LabSettings:
    """Validate the section against the lab's schema and the inventory's servers (lower-case name -> its DAG),
    then build it; InventoryError names the file and the field (`lab.faults[0].kind`)."""
    validation.check(_validator(), raw, file, SECTION, SCHEMA_HINT)
    _check_references(raw, servers, file)
    return LabSettings(
        build=raw.get("build"),
        object_shape=raw.get("object_shape", "remote"),
        builds={k.lower(): v for k, v in (raw.get("builds") or {}).items()},
        databases=tuple(
            DatabaseLayout(name=d["name"], copies=tuple(d["copies"]), lagged=dict(d.get("lagged", {})))
            for d in raw.get("databases", [])
        ),
        faults=tuple(Fault(kind=f["kind"], params={k: v for k, v in f.items() if k != "kind"}) for f in raw.get("faults", [])),
        latency=LabLatency(**{k: float(v) for k, v in raw["latency"].items()}) if raw.get("latency") else None,
    )


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(paths.LAB_SCHEMA.read_text(encoding="utf-8")))


def _check_references(raw: Mapping[str, Any], servers: Mapping[str, str | None], file: str) -> None:
    """The servers and databases the section names exist, and a database's copies are in one DAG."""

    def fail(path: str, problem: str) -> None:
        raise InventoryError(file, f"{SECTION}.{path}", problem)

    db_names: list[str] = []
    for d, db in enumerate(raw.get("databases", [])):
        if db["name"].lower() in {n.lower() for n in db_names}:
            fail(f"databases[{d}].name", f"duplicate database name {db['name']!r}")
        db_names.append(db["name"])
        dags = set()
        for c, server in enumerate(db["copies"]):
            if server.lower() not in servers:
                fail(f"databases[{d}].copies[{c}]", f"server {server!r} is not listed under servers")
            dags.add((servers[server.lower()] or "").lower())
        if len(dags) > 1 or "" in dags and len(db["copies"]) > 1:
            fail(f"databases[{d}].copies", "all copies of a database must be on members of one DAG")
        for server in db.get("lagged", {}):
            if server.lower() not in {s.lower() for s in db["copies"]}:
                fail(f"databases[{d}].lagged.{server}", f"{server!r} holds no copy of {db['name']}")
    for server in raw.get("builds") or {}:
        if server.lower() not in servers:
            fail(f"builds.{server}", f"server {server!r} is not listed under servers")
    for f, fault in enumerate(raw.get("faults", [])):
        if "server" in fault and fault["server"].lower() not in servers:
            fail(f"faults[{f}].server", f"server {fault['server']!r} is not listed under servers")
        if "database" in fault and fault["database"].lower() not in {n.lower() for n in db_names}:
            fail(f"faults[{f}].database", f"database {fault['database']!r} is not listed under lab.databases")
