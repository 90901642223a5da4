"""The results file: one JSON document per run, versioned, written into the history folder.

Why: the HTML report is for reading; this file is what the next run compares against, what
`trend` plots and what other tools may read. Its shape is documented in
dagcheck/report/results.schema.json; bump SCHEMA_VERSION on any incompatible change.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("results.schema.json")

# Check id prefix -> area of the matrix (the ids are in checks/*.py, see dagcheck/catalogue.py).
AREAS: dict[str, str] = {
    "DAG-COPY": "copies", "DAG-DB": "copies", "DAG-REPL": "copies", "DAG-RED": "copies", "DAG-ONE": "copies",
    "DAG-ACT": "copies",
    "DAG-QUEUE": "queues", "DAG-TRANS": "queues",
    "DAG-COMP": "components",
    "DAG-CLU": "cluster", "DAG-DAG": "cluster", "DAG-QUORUM": "cluster",
    "DAG-BUILD": "builds",
    "DAG-EP": "Extended Protection",
    "DAG-AUTOD": "Autodiscover",
    "HOST": "host", "DAG-SVC": "host",
    "DAG-DRIFT": "configuration drift",  # post-maintenance only: its own section, not a column of the matrix
}
AREA_ORDER = ("copies", "queues", "components", "cluster", "builds", "Extended Protection", "Autodiscover", "host")
OUTCOMES = ("pass", "warn", "fail", "waived", "not-checked")


def area_of(check_id: str) -> str:
    prefix = check_id.rsplit("-", 1)[0]
    return AREAS.get(prefix, "other")


@dataclass
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
        out = {"schema_version": self.schema_version, "run": self.run, "inventory": self.inventory,
               "checks": [asdict(c) for c in self.checks], "waivers": self.waivers}
        return out | ({"drift": self.drift} if self.drift else {})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResults:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"results schema_version {data.get('schema_version')!r}: this dagcheck reads {SCHEMA_VERSION}")
        return cls(data["run"], data["inventory"], [CheckResult(**c) for c in data["checks"]],
                   data["schema_version"], data.get("waivers", {}), data.get("drift", []))

    def failing(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome in ("fail", "warn")]


def write(results: RunResults, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results.to_json(), indent=1, sort_keys=False), encoding="utf-8")
    tmp.replace(path)  # a half-written file never becomes "the previous run"
    return path


def read(path: Path) -> RunResults:
    return RunResults.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def stamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
