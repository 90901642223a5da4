"""What a check run keeps of each check (dagcheck.plugin.retention, issue 27): the terminal reporter forgets
the passed setup and teardown reports that have nothing to show, and keeps every report it counts or shows."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

import pytest

from dagcheck.plugin.retention import PassedPhaseReports
from tests.conftest import lab_data


def _report(when: str, outcome: str = "passed", sections: list[tuple[str, str]] | None = None) -> Any:
    return SimpleNamespace(
        when=when,
        passed=outcome == "passed",
        outcome=outcome,
        sections=sections or [],
        nodeid="checks/test_x.py::test_x[mbx1]",
        user_properties=[("check_id", "DAG-X-001"), ("server", "mbx1")],
        keywords={"test_x[mbx1]": 1, "checks": 1},
    )


def _filed(reports: list[Any]) -> dict[str, list[Any]]:
    """Each report filed as the terminal reporter files it, then shown to the plugin (which runs after it)."""
    stats: dict[str, list[Any]] = {}
    plugin = PassedPhaseReports(stats)
    for r in reports:
        category = ("" if r.passed else "error") if r.when != "call" else r.outcome
        stats.setdefault(category, []).append(r)
        plugin.settle(r)
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
    PassedPhaseReports(stats).settle(_report("setup"))  # not the one last filed
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


def _verdict(outcome: str = "passed", sections: list[tuple[str, str]] | None = None) -> Any:
    report = _report("call", outcome, sections)
    report.dagcheck = {"check_id": "DAG-X-001", "severity": "critical"}
    return report


def _teardown() -> Any:
    return _report("teardown")


def test_a_passed_verdict_lets_go_of_what_its_writers_have_written_once_its_teardown_is_reported() -> None:
    verdict = _verdict()
    plugin = PassedPhaseReports({})
    plugin.settle(verdict)
    assert verdict.user_properties and verdict.dagcheck  # pytest-html makes the row at the teardown, from these
    plugin.settle(_teardown())
    assert verdict.user_properties == [] and not hasattr(verdict, "dagcheck") and dict(verdict.keywords) == {}
    assert verdict.nodeid and verdict.outcome == "passed"  # what the end-of-run summary reads


def test_a_verdict_that_is_listed_at_the_end_keeps_everything() -> None:
    failed, with_output = _verdict("failed"), _verdict(sections=[("Captured log call", "WARNING retried")])
    for verdict in (failed, with_output):
        plugin = PassedPhaseReports({})
        plugin.settle(verdict)
        plugin.settle(_teardown())
        assert verdict.user_properties and verdict.dagcheck and verdict.keywords


class _Verdicts:
    """At the end of a run: what the terminal reporter still holds of each verdict."""

    def __init__(self) -> None:
        self.passed: list[Any] = []
        self.failed: list[Any] = []

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        stats = session.config.pluginmanager.get_plugin("terminalreporter").stats
        self.passed, self.failed = list(stats.get("passed", ())), list(stats.get("failed", ()))
        self.items: list[pytest.Item] = list(session.items)


def test_a_check_run_writes_every_verdict_before_letting_go_of_its_properties(run_checks, tmp_path) -> None:
    seen = _Verdicts()
    result = run_checks(lab_data([{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}]), plugins=(seen,))
    assert result.failed() and len(seen.passed) > 1000
    assert all(r.user_properties == [] and not hasattr(r, "dagcheck") for r in seen.passed)
    assert all(r.dagcheck["check_id"] and r.user_properties for r in seen.failed)  # the console's summary reads them
    assert all(item.user_properties == [] for item in seen.items)
    # Written before they were let go: every test case of the JUnit XML has its properties, and pytest-html
    # left the passes out of its table (it reads dagcheck's properties to know a check's pass).
    junit = ET.parse(tmp_path / "reports" / "junit.xml").getroot()
    cases = list(junit.iter("testcase"))
    assert len(cases) == len(result.outcomes)
    assert all(c.find("properties/property[@name='check_id']") is not None for c in cases)
    page = (tmp_path / "reports" / "dagcheck.html").read_text(encoding="utf-8")
    shown = "test_replication_check_passes[mbx2:DBCopyFailed]"
    passes = [n.split("::")[-1] for n, o in result.outcomes.items() if o == "passed" and "\\" not in n]
    assert shown in page and result.outcomes[f"checks/test_health.py::{shown}"] == "failed"
    assert len(passes) > 500 and not any(name in page for name in passes)
