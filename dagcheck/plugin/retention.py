"""What a check run keeps of each check until the run ends (issue 27: peak memory at fleet scale).

pytest's terminal reporter files every report it is shown under its outcome and keeps it to the end of
the run (`TerminalReporter.stats`). A check has three: setup, call and teardown. The call report is the
check's verdict and is counted at the end ("10680 passed"), and a failed or skipped setup or teardown is
an error or a skip that is counted and listed. A *passed* setup or teardown, though, is filed under the
empty category, which the end-of-run line does not count and nothing else in the run reads, except
`-rP`, which shows a passed test's teardown output and so needs the teardown report when it has
captured sections. At 300 servers that is 160,000 reports kept for nothing.

So, in a run of the checks, a passed setup or teardown report with no captured sections leaves the
terminal reporter's statistics as soon as it has been filed. Every other report stays.
Measured with `benchmarks/fleet.py` (benchmarks/README.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from dagcheck.plugin.scope import runs_checks

PLUGIN_NAME = "dagcheck-retention"


class PassedPhaseReports:
    """Forgets the terminal reporter's passed setup and teardown reports that have nothing to show."""

    def __init__(self, stats: dict[str, list[Any]]) -> None:
        self._stats = stats

    @pytest.hookimpl(trylast=True)  # after the terminal reporter has filed the report
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or not report.passed or report.sections:
            return
        held = self._stats.get("")
        if held and held[-1] is report:
            held.pop()


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", None)
    if runs_checks(config) and isinstance(stats, dict) and not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(PassedPhaseReports(stats), PLUGIN_NAME)
