"""The results file: one JSON document per run, versioned, written into the history folder.

Why: the HTML report is for reading; this file is what the next run compares against, what
`trend` plots and what other tools may read. Its shape is documented in
dagcheck/report/results.schema.json; bump SCHEMA_VERSION on any incompatible change.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dagcheck.files import read_bounded, write_private

SCHEMA_VERSION = 1
# What a later run reads of a kept results file at most (a cap, as dagcheck.remote.guard keeps for a server's
# answer): a results file is some 33 MB at 300 servers; a file several times that is not one dagcheck wrote,
# and is refused unread rather than held in memory whole.
MAX_READ_BYTES = 128 * 1024 * 1024
SCHEMA_FILE = Path(__file__).with_name("results.schema.json")

# Check id prefix -> area of the matrix (the ids are in checks/*.py, see dagcheck/catalogue.py).
AREAS: dict[str, str] = {
    "DAG-COPY": "copies",
    "DAG-DB": "copies",
    "DAG-REPL": "copies",
    "DAG-RED": "copies",
    "DAG-ONE": "copies",
    "DAG-ACT": "copies",
    "DAG-QUEUE": "queues",
    "DAG-TRANS": "queues",
    "DAG-COMP": "components",
    "DAG-CLU": "cluster",
    "DAG-DAG": "cluster",
    "DAG-QUORUM": "cluster",
    "DAG-BUILD": "builds",
    "DAG-EP": "Extended Protection",
    "DAG-AUTOD": "Autodiscover",
    "HOST": "host",
    "DAG-SVC": "host",
    "DAG-DRIFT": "configuration drift",  # post-maintenance only: its own section, not a column of the matrix
}
AREA_ORDER = ("copies", "queues", "components", "cluster", "builds", "Extended Protection", "Autodiscover", "host")
OUTCOMES = ("pass", "warn", "fail", "waived", "not-checked")


def area_of(check_id: str) -> str:
    prefix = check_id.rsplit("-", 1)[0]
    return AREAS.get(prefix, "other")


@dataclass(slots=True)  # a fleet run holds one per check to its end: no __dict__ each (issue 27)
class CheckResult:
    id: str
    title: str
    severity: str
    area: str
    server: str
    object: str
    phase: str
    outcome: str  # one of OUTCOMES
    expected: str = ""
    actual: str = ""
    message: str = ""
    remediation: str = ""
    commands: list[str] = field(default_factory=list)
    waiver: dict[str, str] | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.id, self.server, self.object, self.phase)


@dataclass
class RunResults:
    run: dict[str, Any]  # started, finished, kind (nightly/adhoc), scope, phase, args, exit_status
    inventory: dict[str, Any]  # file, dags {name: [servers]}
    checks: list[CheckResult]
    schema_version: int = SCHEMA_VERSION
    waivers: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    drift: list[dict[str, Any]] = field(default_factory=list)  # dagcheck.drift.Drift.to_json(), per server

    def to_json(self) -> dict[str, Any]:
        out = {
            "schema_version": self.schema_version,
            "run": self.run,
            "inventory": self.inventory,
            "checks": [asdict(c) for c in self.checks],
            "waivers": self.waivers,
        }
        return out | ({"drift": self.drift} if self.drift else {})

    @classmethod
    def from_json(cls, data: Any) -> RunResults:
        """The results of a file another run wrote, or ValueError saying what in it is not dagcheck's shape
        (what later runs read of it must not fail them: the summary, the comparison, the trend)."""
        if not isinstance(data, dict):
            raise ValueError(f"not a results document (a JSON {type(data).__name__}, not an object)")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"results schema_version {data.get('schema_version')!r}: this dagcheck reads {SCHEMA_VERSION}")
        run, inventory = _object(data, "run"), _object(data, "inventory")
        for key in ("started", "scope", "kind", "phase"):
            if not isinstance(run.get(key, ""), str):
                raise ValueError(f"run.{key} is a JSON {type(run[key]).__name__}, not a string")
        dags = inventory.get("dags", {})
        if not isinstance(dags, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in dags.values()
        ):
            raise ValueError("inventory.dags is not an object of server-name lists")
        checks = data.get("checks")
        if not isinstance(checks, list):
            raise ValueError("checks is not a list")
        return cls(
            run,
            inventory,
            [_check(i, c) for i, c in enumerate(checks)],
            data["schema_version"],
            _object(data, "waivers", {}),
            data.get("drift", []) or [],
        )

    def failing(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome in ("fail", "warn")]


def _object(data: dict[str, Any], key: str, default: Any = None) -> dict[str, Any]:
    value = data.get(key, default)
    if not isinstance(value, dict):
        raise ValueError(f"{key} is a JSON {type(value).__name__}, not an object")
    return value


def _check(index: int, raw: Any) -> CheckResult:
    """One check's verdict as a later run reads it: every text field a string, the commands a list of them."""
    if not isinstance(raw, dict):
        raise ValueError(f"checks[{index}] is a JSON {type(raw).__name__}, not an object")
    try:
        check = CheckResult(**raw)
    except TypeError as exc:
        raise ValueError(f"checks[{index}]: {exc}") from None
    for name in (f.name for f in fields(check)):
        value = getattr(check, name)
        if name == "commands":
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        elif name == "waiver":
            ok = value is None or isinstance(value, dict)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"checks[{index}].{name} is a JSON {type(value).__name__} (not dagcheck's shape)")
    return check


def write(results: RunResults, path: Path) -> Path:
    """Atomically and owner-only (dagcheck.files): a half-written file never becomes "the previous run", and a
    failed write leaves no temporary file."""
    return write_private(path, json.dumps(results.to_json(), indent=1, sort_keys=False))


def read(path: Path) -> RunResults:
    """A results file (or digest) another run wrote. Refused unread over MAX_READ_BYTES (dagcheck.files.read_bounded),
    and ValueError, never a crash, for anything that is not dagcheck's shape: not UTF-8, not JSON, nested
    past the parser's recursion limit, or another structure."""
    raw = read_bounded(path, MAX_READ_BYTES, "results file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply to be a results file") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return RunResults.from_json(data)
    except RecursionError:
        raise ValueError("nested too deeply to be a results file") from None


def stamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
