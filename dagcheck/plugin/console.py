"""What a check run says on the console at its end: TLS and cleartext warnings, each maintenance
transition, planned maintenance and notes, the blind servers, the gate, and, as the very last line,
dagcheck's verdict with the exit status (after pytest's own statistics line)."""

from __future__ import annotations

from typing import Any

import pytest

from dagcheck.plugin.keys import CONTROLLER_KEY, MAINTENANCE_KEY, NOTES_KEY, VERDICT_KEY
from dagcheck.plugin.notices import cleartext_lines, transition_lines, unverified_tls


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session):  # type: ignore[no-untyped-def]
    """Prints dagcheck's verdict after pytest's own statistics line, so the run's last line says whether
    the DAG is unhealthy, some server could not be checked, or both (and the exit status)."""
    result = yield
    verdict = session.config.stash.get(VERDICT_KEY, None)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if verdict is not None and reporter is not None:
        reporter.write_line(verdict.line(), bold=True, red=verdict.exit_code != 0, green=verdict.exit_code == 0)
    return result


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    unverified = unverified_tls(config)
    if unverified:
        terminalreporter.write_line(
            f"WARNING: TLS certificates were NOT verified for {', '.join(unverified)} "
            "(connection.verify_tls: false in the inventory)",
            red=True,
            bold=True,
        )
    for line in cleartext_lines(config):
        terminalreporter.write_line(line, red=True, bold=True)
    ctl = config.stash.get(CONTROLLER_KEY, None)
    for result in ctl.results.values() if ctl else ():
        terminalreporter.section(f"dagcheck {result.direction} maintenance: {result.server}")
        for line in transition_lines(result):
            terminalreporter.write_line(line)
    states = [s for s in config.stash.get(MAINTENANCE_KEY, {}).values() if s is not None]
    notes: list[str] = config.stash.get(NOTES_KEY, [])
    for line in [s.describe() for s in states] + list(dict.fromkeys(notes)):
        terminalreporter.write_line(f"dagcheck: {line}", yellow=True)
    verdict = config.stash.get(VERDICT_KEY, None)
    for line in verdict.blind_lines() if verdict is not None else ():
        terminalreporter.write_line(line, red=True, bold=True)
    _gate_line(terminalreporter, config)


def _gate_line(terminalreporter: Any, config: pytest.Config) -> None:
    failed = [r for r in terminalreporter.stats.get("failed", []) if getattr(r, "dagcheck", None)]
    warnings = [r for r in failed if r.dagcheck["severity"] == "warning"]
    critical = len(failed) - len(warnings)
    if failed:
        verdict = "FAILS" if critical or config.getoption("--strict-warnings") else "PASSES"
        terminalreporter.write_line(
            f"dagcheck gate {verdict}: {critical} critical and {len(warnings)} warning check(s) failed"
            + (
                ""
                if config.getoption("--strict-warnings")
                else " (warnings alone do not fail the gate; --strict-warnings makes them)"
            ),
            bold=True,
            red=verdict == "FAILS",
            yellow=verdict == "PASSES",
        )
