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

A passed verdict (call report) stays, but once its test's teardown has been reported (pytest-html makes
the row then, from the call report), nothing reads its JUnit properties or dagcheck's properties again:
they are in the JUnit file and the results already. Those of a passed verdict with nothing to show are
let go (and its keywords, the same for its three reports, used to select it at collection), and so are
the item's own copies once its protocol has run. A failed or
skipped verdict keeps everything: the end-of-run summary lists it from them.
Measured with `benchmarks/fleet.py` (benchmarks/README.md).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from dagcheck.plugin.keys import KEYWORDS_KEY
from dagcheck.plugin.scope import runs_checks

PLUGIN_NAME = "dagcheck-retention"
# What a passed verdict's keywords become once written: one empty mapping for all (a check's keywords are
# for selecting it, -k and -m, which happened at collection).
NO_KEYWORDS: MappingProxyType[str, Any] = MappingProxyType({})


class PassedPhaseReports:
    """Forgets the terminal reporter's passed setup and teardown reports that have nothing to show, and what a
    passed verdict carries for writers that have already written it."""

    def __init__(self, stats: dict[str, list[Any]]) -> None:
        self._stats = stats
        self._verdict: Any = None  # the running check's passed call report, until its teardown is reported

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport):  # type: ignore[no-untyped-def]
        yield  # every plugin has had the report: the terminal reporter, JUnit XML, pytest-html (trylast)
        self.settle(report)

    def settle(self, report: pytest.TestReport) -> None:
        """What stays of a report once every plugin has had it."""
        if report.when == "call":
            self._verdict = report if report.passed and not report.sections else None
            return
        if report.when == "teardown":
            verdict, self._verdict = self._verdict, None
            if verdict is not None and verdict.nodeid == report.nodeid:
                _let_go(verdict)
        if not report.passed or report.sections:
            return
        held = self._stats.get("")
        if held and held[-1] is report:
            held.pop()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item):  # type: ignore[no-untyped-def]
        yield
        # pytest copies them into each report; the teardown report, the last to read them, has been written.
        item.user_properties.clear()
        if KEYWORDS_KEY in item.stash:
            del item.stash[KEYWORDS_KEY]


def _let_go(verdict: Any) -> None:
    """A passed verdict keeps what the terminal reporter reads at the end (its node id, outcome, sections)."""
    verdict.user_properties.clear()
    verdict.__dict__.pop("dagcheck", None)
    verdict.keywords = NO_KEYWORDS


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", None)
    if runs_checks(config) and isinstance(stats, dict) and not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(PassedPhaseReports(stats), PLUGIN_NAME)
