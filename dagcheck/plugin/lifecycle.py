"""The build and lifecycle tables of a run: which files (--build-table, --lifecycle-table), how old they are,
and the fixtures the build checks read them from.

Registered by dagcheck.plugin (pytest_plugins). The tables are read once, at configure time, so that a bad
file is a usage error naming file and line before anything connects, and so that the checks stay pure:
they receive the tables and the run's date as fixtures.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

import pytest

from dagcheck.rules.builds import TableError, Tables, load_tables, stale_tables

TABLES_KEY = pytest.StashKey[Tables]()
STALE_KEY = pytest.StashKey[list[str]]()
RUN_DATE_KEY = pytest.StashKey[dt.date]()


class StaleTableWarning(pytest.PytestWarning):
    """A build or lifecycle table older than 90 days: its verdicts may miss newer releases."""


def pytest_configure(config: pytest.Config) -> None:
    build, lifecycle = config.getoption("--build-table"), config.getoption("--lifecycle-table")
    try:
        tables = load_tables(Path(build) if build else None, Path(lifecycle) if lifecycle else None)
    except TableError as exc:
        option = "--build-table" if build and Path(build) == exc.path else \
            "--lifecycle-table" if lifecycle and Path(lifecycle) == exc.path else "the package's table"
        raise pytest.UsageError(f"{option}: {exc}") from None
    today = dt.datetime.now(dt.UTC).date()
    config.stash[TABLES_KEY] = tables
    config.stash[RUN_DATE_KEY] = today
    from dagcheck.plugin import _runs_checks

    config.stash[STALE_KEY] = stale = stale_tables(tables, today) if _runs_checks(config) else []
    for line in stale:
        config.issue_config_time_warning(StaleTableWarning(line), stacklevel=2)


@pytest.fixture(scope="session")
def exchange_tables(request: pytest.FixtureRequest) -> Tables:
    """The build and lifecycle tables this run judges builds by."""
    return request.config.stash[TABLES_KEY]


@pytest.fixture(scope="session")
def run_date(request: pytest.FixtureRequest) -> dt.date:
    """The day of the run (UTC), against which end-of-support dates are judged."""
    return request.config.stash[RUN_DATE_KEY]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for line in config.stash.get(STALE_KEY, []):
        terminalreporter.write_line(f"WARNING: {line}", yellow=True, bold=True)


def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session) -> None:
    for line in session.config.stash.get(STALE_KEY, []):
        prefix.append(f"<p style='color:#a60;font-weight:bold'>Stale table: {html.escape(line)}</p>")
