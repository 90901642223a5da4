"""The run's objects, made on first use and kept in config.stash: the DagcheckSession (which connects,
or starts the lab), the maintenance Controller, the run's one notion of now, and what is judged once per
member and run (planned or forgotten maintenance, configuration drift).

Only collection and fixtures make them; a reporting or recording hook reads config.stash and does
without what is not there (issue 22)."""

from __future__ import annotations

import datetime as dt

import pytest

from dagcheck import drift as config_drift
from dagcheck import safety
from dagcheck.maintenance.controller import Controller
from dagcheck.maintenance.planned import MaintenanceState, state_of
from dagcheck.plugin.keys import (
    CONTROLLER_KEY,
    DRIFT_KEY,
    GATE_FAILURES_KEY,
    INVENTORY_KEY,
    MAINTENANCE_KEY,
    NOW_KEY,
    PROGRESS_KEY,
    SESSION_KEY,
)
from dagcheck.plugin.scope import run_phases
from dagcheck.session import DagcheckSession


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def controller(config: pytest.Config) -> Controller:
    if CONTROLLER_KEY not in config.stash:
        servers = config.getoption("--server") or []
        progress = safety.live_writer(config)  # shown as it happens, also without -s
        config.stash[CONTROLLER_KEY] = Controller(
            dagcheck_session(config),
            servers[0] if len(servers) == 1 else None,
            config.getoption("--target"),
            run_phases(config),
            config.getoption("--apply"),
            config.getoption("--force"),
            config.getoption("--reports-dir"),
            progress,
            # The pre-flight failures recorded so far (dagcheck.plugin.outcomes), and those still to come.
            gate_failures=config.stash.setdefault(GATE_FAILURES_KEY, []),
        )
    return config.stash[CONTROLLER_KEY]


def dagcheck_session(config: pytest.Config) -> DagcheckSession:
    if SESSION_KEY not in config.stash:
        config.stash[SESSION_KEY] = DagcheckSession(
            config.stash[INVENTORY_KEY],
            servers=config.getoption("--server") or None,
            dag=config.getoption("--dag"),
            phase=config.getoption("--phase"),
            save=config.getoption("--save"),
            replay=config.getoption("--replay"),
        )
        progress = safety.CollectionProgress(safety.live_writer(config))
        config.stash[PROGRESS_KEY] = progress
        config.stash[SESSION_KEY].transcript.listeners.append(progress.call)
        config.stash[SESSION_KEY].transport.states.listeners.append(progress.blind)
    return config.stash[SESSION_KEY]


def run_now(config: pytest.Config) -> dt.datetime:
    """The run's one notion of now (UTC), against which maintenance windows are judged."""
    return config.stash.setdefault(NOW_KEY, dt.datetime.now(dt.UTC))


def maintenance_state(config: pytest.Config, server: str, phase: str) -> MaintenanceState | None:
    """Planned or forgotten maintenance of a member, judged once per run (nightly health phase only)."""
    if phase != "health":
        return None
    cache = config.stash.setdefault(MAINTENANCE_KEY, {})
    if server.lower() not in cache:
        session = dagcheck_session(config)
        cache[server.lower()] = state_of(
            session.collector, session.inventory, server, phase, config.getoption("--reports-dir"), run_now(config)
        )
    return cache[server.lower()]


def drift_of(config: pytest.Config, server: str, phase: str) -> config_drift.Drift | config_drift.BaselineError | str:
    """The server's settings after maintenance against its baseline, compared once per run (both
    DAG-DRIFT checks read it, and so does the report); a text says why nothing can be compared."""
    cache = config.stash.setdefault(DRIFT_KEY, {})
    if server.lower() not in cache:
        session = dagcheck_session(config)
        reports_dir = config.getoption("--reports-dir")
        try:
            baseline = config_drift.load(reports_dir, server)
        except config_drift.BaselineError as exc:
            baseline, cache[server.lower()] = None, exc
        if baseline is None and server.lower() not in cache:
            cache[server.lower()] = (
                f"no configuration baseline for {server} ({config_drift.path_for(reports_dir, server)}): "
                "it is saved when dagcheck enters maintenance with --apply"
            )
        elif baseline is not None:
            snap = session.collector.snapshot(server, phase)
            after, unread = config_drift.read_settings(snap.get, server)
            critical = (*config_drift.INVENTORY_EXPECTED, *session.inventory.expectations.drift_critical)
            try:
                cache[server.lower()] = config_drift.compare(baseline, after, unread, critical)
            except config_drift.BaselineError as exc:  # a baseline of another build line: both checks fail with it
                cache[server.lower()] = exc
    return cache[server.lower()]
