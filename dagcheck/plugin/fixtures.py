"""The fixtures checks ask for: the inventory and its expectations, the object a check judges from
the current phase's snapshot, the DAG around it, maintenance, drift, the run's now and its build
tables. Thin: they connect, collect and transition through dagcheck.plugin.run, and hold no policy."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dagcheck import drift as config_drift
from dagcheck.catalogue import CATALOGUE
from dagcheck.collect import SourceFailed
from dagcheck.context import DagView
from dagcheck.inventory import Expectations, Inventory
from dagcheck.maintenance.controller import Controller
from dagcheck.maintenance.planned import MaintenanceState
from dagcheck.plugin.keys import FORGOTTEN_CHECK, INVENTORY_KEY, NOTES_KEY, RUN_DATE_KEY, TABLES_KEY
from dagcheck.plugin.run import controller, dagcheck_session, drift_of, maintenance_state, run_now
from dagcheck.rules.builds import Tables
from dagcheck.session import Target


class Uncollectable:
    """Stands in for the object when its source could not be collected; the check then fails (not errors)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> Inventory:
    return request.config.stash[INVENTORY_KEY]


@pytest.fixture(scope="session")
def expect(inventory: Inventory) -> Expectations:
    return inventory.expectations


@pytest.fixture(scope="session")
def exchange_tables(request: pytest.FixtureRequest) -> Tables:
    """The build and lifecycle tables this run judges builds by (read at configure: dagcheck.plugin.lifecycle)."""
    return request.config.stash[TABLES_KEY]


@pytest.fixture(scope="session")
def run_date(request: pytest.FixtureRequest) -> dt.date:
    """The day of the run (UTC), against which end-of-support dates are judged."""
    return request.config.stash[RUN_DATE_KEY]


# The per-check fixtures below take `pytestconfig` (session-scoped, resolved once), not `request`: pytest builds
# a new FixtureDef, with a signature inspection, each time a fixture asks for `request`, twice per fixture and
# check (a tenth of the run's CPU at fleet scale). The check's id travels in its Target for the same reason.
@pytest.fixture
def transition(pytestconfig: pytest.Config, target: Target) -> Controller:
    """Performs the maintenance transition due before this check's phase, once per run (entering before
    the first maintenance check, leaving before the first post-maintenance check); a no-op otherwise."""
    ctl = controller(pytestconfig)
    ctl.before(target.phase)
    return ctl


@pytest.fixture
def item(pytestconfig: pytest.Config, target: Target, transition: Controller) -> Any:
    """The object the check judges, from the current phase's snapshot."""
    ctl = transition
    if target.phase == "preflight" and (resume := ctl.resuming()) is not None:
        pytest.skip(resume)
    if (blocked := ctl.blocked(target.phase)) is not None:
        # Reported once, as the transition's refusal or stop (and by the exit status): the checks of a phase
        # that was never reached are not run, not failed.
        pytest.skip(f"not run: {blocked}")
    if (dry := ctl.pending_dry_run(target.phase)) is not None:
        pytest.skip(dry)
    spec = CATALOGUE.get(target.check)
    state = maintenance_state(pytestconfig, target.server, target.phase) if spec is not None else None
    if state is not None and state.unreachable and spec is not None and spec.id == FORGOTTEN_CHECK:
        return ()  # planned and not answering: DAG-MAINT-001 judges the DAG with it down, from the others
    if target.error is not None and state is None:
        return Uncollectable(target.error)
    if spec is not None and spec.id != FORGOTTEN_CHECK and state is not None:
        # A member in maintenance: planned, its service checks say so; forgotten, DAG-MAINT-001 is the one finding.
        pytest.skip(state.skip_reason())
    try:
        return dagcheck_session(pytestconfig).lookup(target, spec)  # type: ignore[arg-type]
    except SourceFailed as exc:
        return Uncollectable(str(exc))
    except LookupError as exc:
        return Uncollectable(str(exc))


@pytest.fixture
def dag(pytestconfig: pytest.Config, target: Target) -> DagView:
    """The target server's DAG as seen in this phase: the other members' snapshots, the --target server."""
    session = dagcheck_session(pytestconfig)
    return DagView(
        target.server,
        session.inventory,
        session.collector,
        target.phase,
        pytestconfig.getoption("--target"),
        lambda member: maintenance_state(pytestconfig, member, target.phase),
        run_now(pytestconfig),
        pytestconfig.stash.setdefault(NOTES_KEY, []),
    )


@pytest.fixture
def maintenance(pytestconfig: pytest.Config, target: Target) -> MaintenanceState | None:
    """The target member's maintenance, planned or forgotten (None: in service, or not the nightly run)."""
    return maintenance_state(pytestconfig, target.server, target.phase)


@pytest.fixture
def drift(pytestconfig: pytest.Config, target: Target) -> config_drift.Drift | config_drift.BaselineError:
    """The target server's configuration drift across maintenance (or why its baseline cannot be read:
    the checks fail with it); skipped, with why, when no baseline was saved."""
    found = drift_of(pytestconfig, target.server, target.phase)
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture
def now(pytestconfig: pytest.Config) -> dt.datetime:
    """The run's one notion of now (UTC), against which certificates' validity is judged."""
    return run_now(pytestconfig)


@pytest.fixture
def snapshot(pytestconfig: pytest.Config, target: Target) -> Any:
    """The whole snapshot of the target's server, for checks that compare two of its sources."""
    return dagcheck_session(pytestconfig).collector.snapshot(target.server, target.phase)
