"""Helpers for the project's own tests: run the checks against a lab with faults, in this process."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import processes

ROOT = Path(__file__).resolve().parent.parent
LAB_YML = ROOT / "inventory" / "lab.yml"
# The project's own tests run on the lab whatever inventory this machine has: without this, dagcheck.locate's
# order would let a run without --inventory find ./dagcheck.yml, ~/.config/dagcheck/inventory.yml or
# /etc/dagcheck/inventory.yml (an administrator's real organisation) before the lab. Tests of that order
# remove it (tests/unit/test_locate.py).
os.environ["DAGCHECK_INVENTORY"] = str(LAB_YML)


# Modules whose tests each drive persistent lab processes through several whole runs (a minute or more each
# under load). Collected first, as whole modules (their module-scoped labs stay set up once), so that
# `pytest tests -n auto` hands them out before the short tests instead of leaving one to run alone at the end.
# Paths are relative to this folder, as pytest's node ids give them after tests/.
LONG_FIRST = (
    "scenarios/test_rolling_patch.py",
    "scenarios/test_dag_lease.py",
    "unit/test_drift.py",
    "scenarios/test_run_safety.py",
    "unit/maintenance/test_runner.py",
)
TESTS = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    processes.stop_on_sigterm()  # a suite told to stop kills the labs it started


def pytest_sessionfinish(session: pytest.Session) -> None:
    processes.kill_all()  # nothing a test started outlives the suite (each xdist worker cleans its own)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Only the order changes: every test still runs, and each module's tests keep their own order."""
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(_under_tests(item.path), len(LONG_FIRST)))


def _under_tests(path: Path) -> str:
    return path.relative_to(TESTS).as_posix() if path.is_relative_to(TESTS) else path.name


def lab_data(faults: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = yaml.safe_load(LAB_YML.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    data["lab"]["faults"] = list(faults or [])
    return data


@pytest.fixture
def lab():
    """lab.yml's organisation served on loopback for one test: (inventory, org, LabServer). A module that
    needs another shape defines its own `lab`, which wins over this one."""
    from dagcheck.inventory import load_inventory
    from dagcheck.lab.build import build_organization
    from dagcheck.lab.server import LabServer

    inventory = load_inventory(LAB_YML)
    org = build_organization(inventory)
    with LabServer(org) as server:
        yield inventory, org, server


@dataclass
class RunResult:
    exit_code: int
    outcomes: dict[str, str] = field(default_factory=dict)  # nodeid -> passed/failed/skipped
    messages: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (server, endpoint, command) sent
    skips: dict[str, str] = field(default_factory=dict)  # nodeid -> skip reason

    def skip_reasons(self) -> dict[str, str]:
        return dict(self.skips)

    def failed(self) -> set[str]:
        return {n for n, o in self.outcomes.items() if o == "failed"}

    def short_failed(self) -> set[str]:
        """Failed tests as 'test_name[param]', without the module path."""
        return {n.split("::", 1)[1].replace("\\\\", "\\") for n in self.failed()}


class _Recorder:
    def __init__(self, result: RunResult) -> None:
        self.result = result

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from dagcheck.plugin.keys import SESSION_KEY

        dc = session.config.stash.get(SESSION_KEY, None)
        if dc is not None:
            self.result.calls = [(i.server, i.endpoint.value, i.command.render()) for i in dc.transcript.invocations]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.failed or (report.when == "setup" and report.skipped):
            if report.nodeid not in self.result.outcomes or report.failed:
                self.result.outcomes[report.nodeid] = report.outcome
                if report.failed:
                    self.result.messages[report.nodeid] = str(report.longrepr)
                if report.skipped and isinstance(report.longrepr, tuple):
                    self.result.skips[report.nodeid] = str(report.longrepr[2])


def check_run_args(inventory: Path, reports: Path, *extra: str) -> list[str]:
    """pytest's arguments for a run of checks/ against an inventory file, as the README's main job runs it
    (in this process through run_checks, or in a child process)."""
    return [
        str(ROOT / "checks"),
        "--inventory",
        str(inventory),
        "--reports-dir",
        str(reports),
        "-p",
        "no:cacheprovider",
        "-q",
        "--rootdir",
        str(ROOT),
        "-c",
        str(ROOT / "pyproject.toml"),
        *extra,
    ]


@pytest.fixture
def run_checks(tmp_path: Path):
    """Run checks/ in this process against an inventory (dict) and return every outcome."""

    def run(data: dict[str, Any], *extra: str, plugins: tuple[object, ...] = ()) -> RunResult:
        inv = tmp_path / "inventory.yml"
        inv.write_text(yaml.safe_dump(data), encoding="utf-8")
        result = RunResult(0)
        args = check_run_args(inv, tmp_path / "reports", "-o", "console_output_style=classic", *extra)
        result.exit_code = int(pytest.main(args, plugins=[_Recorder(result), *plugins]))
        return result

    return run
