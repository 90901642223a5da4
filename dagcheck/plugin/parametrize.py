"""Collection: each check parametrized from the inventory with ids that name the object, the checks
ordered by phase, and the end of collection's progress line."""

from __future__ import annotations

from typing import Any

import pytest

from dagcheck.catalogue import CheckSpec
from dagcheck.maintenance.controller import PHASE_ORDER
from dagcheck.plugin.keys import PROGRESS_KEY
from dagcheck.plugin.run import dagcheck_session
from dagcheck.plugin.scope import run_phases
from dagcheck.session import Target


def spec_of(function: Any) -> CheckSpec | None:
    """The check's catalogue entry (dagcheck.catalogue.check), None for a function that is not a check."""
    return getattr(function, "_dagcheck_check", None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    spec = spec_of(metafunc.function)
    if spec is None or "target" not in metafunc.fixturenames:
        return
    run = run_phases(metafunc.config)
    phases = [p for p in run if p in spec.phases]
    session = dagcheck_session(metafunc.config)
    targets = [t for phase in phases for t in session.targets(spec, phase, enumerate_in=run[0])]
    # A check that runs in two phases of one run (pre-flight and post-maintenance) says which in its id.
    ids = [f"{t.phase}-{t.label}" if len(phases) > 1 else t.label for t in targets]
    metafunc.parametrize("target", targets, ids=ids)


def _phase_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    target = callspec.params.get("target") if callspec is not None else None
    return target.phase if isinstance(target, Target) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Phases run in order, so that a transition sits between the checks of one phase and the next.
    order = {p: i for i, p in enumerate(PHASE_ORDER)}
    items.sort(key=lambda item: order.get(_phase_of(item) or "", -1))


def pytest_collection_finish(session: pytest.Session) -> None:
    progress = session.config.stash.get(PROGRESS_KEY, None)
    if progress is not None:
        progress.finish()
