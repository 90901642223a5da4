"""What a check run keeps of each check (dagcheck.plugin.retention, issue 27): the terminal reporter forgets
the passed setup and teardown reports that have nothing to show, and keeps every report it counts or shows."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from dagcheck.plugin.retention import PassedPhaseReports
from tests.conftest import lab_data


def _report(when: str, outcome: str = "passed", sections: list[tuple[str, str]] | None = None) -> Any:
    return SimpleNamespace(when=when, passed=outcome == "passed", outcome=outcome, sections=sections or [])


def _filed(reports: list[Any]) -> dict[str, list[Any]]:
    """Each report filed as the terminal reporter files it, then shown to the plugin (which runs after it)."""
    stats: dict[str, list[Any]] = {}
    plugin = PassedPhaseReports(stats)
    for r in reports:
        category = ("" if r.passed else "error") if r.when != "call" else r.outcome
        stats.setdefault(category, []).append(r)
        plugin.pytest_runtest_logreport(r)
    return stats


def test_passed_setup_and_teardown_reports_with_nothing_to_show_are_not_kept() -> None:
    stats = _filed([_report("setup"), _report("call"), _report("teardown")] * 3)
    assert stats[""] == []
    assert len(stats["passed"]) == 3


def test_reports_that_are_counted_or_shown_are_kept() -> None:
    with_output = _report("teardown", sections=[("Captured log teardown", "WARNING shell left open")])
    failed_setup = _report("setup", outcome="failed")
    stats = _filed([_report("setup"), _report("call", "failed"), with_output, failed_setup])
    assert stats[""] == [with_output]  # -rP shows a passed test's teardown output from it
    assert stats["error"] == [failed_setup] and len(stats["failed"]) == 1


def test_a_report_filed_elsewhere_is_left_alone() -> None:
    other = _report("setup")
    stats: dict[str, list[Any]] = {"": [other]}
    PassedPhaseReports(stats).pytest_runtest_logreport(_report("setup"))  # not the one last filed
    assert stats[""] == [other]


class _Stats:
    def __init__(self) -> None:
        self.kept: dict[str, int] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        stats = session.config.pluginmanager.get_plugin("terminalreporter").stats
        self.kept = {category: len(reports) for category, reports in stats.items()}


def test_a_check_run_keeps_its_verdicts_and_not_its_passed_setups(run_checks) -> None:
    seen = _Stats()
    result = run_checks(lab_data([{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}]), plugins=(seen,))
    outcomes = list(result.outcomes.values())
    assert result.failed() and seen.kept.get("failed") == outcomes.count("failed")
    assert seen.kept.get("passed") == outcomes.count("passed") > 1000
    assert seen.kept.get("", 0) == 0  # was two per check: setup and teardown
