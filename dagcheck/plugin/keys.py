"""The bottom of the pytest face: every config.stash key and constant its modules share.

Each module of dagcheck.plugin imports what it shares from here and from nowhere else in the
package, so no import, at module or at function level, runs back up it (issue 22). The run's
state lives in config.stash under these keys, never in module or class attributes: pytest can run
twice in one process (tests/conftest.py does), and each run must start empty.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dagcheck import drift, locate, safety
from dagcheck.inventory import Inventory
from dagcheck.maintenance.controller import Controller
from dagcheck.maintenance.planned import MaintenanceState
from dagcheck.report.mail import EmailSettings
from dagcheck.report.results import CheckResult, RunResults
from dagcheck.report.waivers import Waivers
from dagcheck.rules.builds import Tables
from dagcheck.session import DagcheckSession

PHASE_MARKERS = {
    "health": "nightly DAG health checks",
    "preflight": "the gate before patching a DAG member",
    "maintenance": "the server is fully in maintenance",
    "postflight": "the server is fully back in service",
}
FORGOTTEN_CHECK = "DAG-MAINT-001"


@dataclass
class ReportState:
    """One check run's report in the making: every check's result as data, and what was written."""

    kind: str  # "nightly" or "adhoc"
    stem: str
    reports: Path
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    checks: list[CheckResult] = field(default_factory=list)
    waivers: Waivers | None = None
    summary_html: str | None = None
    results_path: Path | None = None
    summary_path: Path | None = None
    results: RunResults | None = None
    changed: bool = False
    mail_outcome: str | None = None
    previous: RunResults | None = None  # the nightly run compared with (its digest), for the mail
    trend_png: bytes | None = None  # the trend as the mail's related image part
    # (test id, verdict): the results table without JavaScript
    not_passed: list[tuple[str, CheckResult]] = field(default_factory=list)
    # (source, server, phase) -> command lines
    commands: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)


@dataclass
class HtmlTable:
    """What the pytest-html results-table hooks share within one run (those hooks get no config, so
    the run's reporting plugin object reaches this through config.stash).

    pytest-html 4 counts only the rows it keeps (pytest-html issue #794): `data` is its report data,
    whose counts a left-out pass is added to; `reports` its per-test reports, released once a test's
    row is made; `left_out` the node ids whose passing call has no row (their passing teardown has
    none either)."""

    data: Any = None
    reports: dict[str, Any] | None = None
    left_out: set[str] = field(default_factory=set)


INVENTORY_KEY = pytest.StashKey[Inventory]()
VERDICT_KEY = pytest.StashKey[safety.Verdict]()
PROGRESS_KEY = pytest.StashKey[safety.CollectionProgress]()
SESSION_KEY = pytest.StashKey[DagcheckSession]()
CONTROLLER_KEY = pytest.StashKey[Controller]()
# Pre-flight failures that close the gate, kept apart from the Controller: the hook that records them
# must not create the controller (and with it the session, which starts the lab).
GATE_FAILURES_KEY = pytest.StashKey[list[str]]()
MAINTENANCE_KEY = pytest.StashKey[dict[str, MaintenanceState | None]]()
NOW_KEY = pytest.StashKey[dt.datetime]()
NOTES_KEY = pytest.StashKey[list[str]]()
DRIFT_KEY = pytest.StashKey[dict[str, drift.Drift | drift.BaselineError | str]]()
KEYWORDS_KEY = pytest.StashKey[dict[str, Any]]()
LOCATED_KEY = pytest.StashKey[locate.Found]()
TABLES_KEY = pytest.StashKey[Tables]()
STALE_KEY = pytest.StashKey[list[str]]()
RUN_DATE_KEY = pytest.StashKey[dt.date]()
STATE_KEY = pytest.StashKey[ReportState]()
HTML_TABLE_KEY = pytest.StashKey[HtmlTable]()
MAIL_SETTINGS_KEY = pytest.StashKey[EmailSettings | None]()
