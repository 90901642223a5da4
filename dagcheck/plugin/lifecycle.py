"""The build and lifecycle tables of a run: which files (--build-table, --lifecycle-table) and how old
they are (the fixtures the build checks read them from are in dagcheck.plugin.fixtures).

The tables are read once, at configure time, so that a bad file is a usage error naming file and line
before anything connects, and so that the checks stay pure: they receive the tables and the run's date
as fixtures. A stale table is a warning on the console, in the summary and in the HTML report
(dagcheck.plugin.reporting).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from dagcheck.plugin.keys import RUN_DATE_KEY, STALE_KEY, TABLES_KEY
from dagcheck.plugin.scope import runs_checks
from dagcheck.rules.builds import TableError, load_tables, stale_tables


class StaleTableWarning(pytest.PytestWarning):
    """A build or lifecycle table older than 90 days: its verdicts may miss newer releases."""


def pytest_configure(config: pytest.Config) -> None:
    build, lifecycle = config.getoption("--build-table"), config.getoption("--lifecycle-table")
    try:
        tables = load_tables(Path(build) if build else None, Path(lifecycle) if lifecycle else None)
    except TableError as exc:
        option = (
            "--build-table"
            if build and Path(build) == exc.path
            else "--lifecycle-table"
            if lifecycle and Path(lifecycle) == exc.path
            else "the package's table"
        )
        raise pytest.UsageError(f"{option}: {exc}") from None
    today = dt.datetime.now(dt.UTC).date()
    config.stash[TABLES_KEY] = tables
    config.stash[RUN_DATE_KEY] = today
    config.stash[STALE_KEY] = stale = stale_tables(tables, today) if runs_checks(config) else []
    for line in stale:
        config.issue_config_time_warning(StaleTableWarning(line), stacklevel=2)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for line in config.stash.get(STALE_KEY, []):
        terminalreporter.write_line(f"WARNING: {line}", yellow=True, bold=True)
