"""dagcheck.plugin.outcomes: recording a verdict reads the run's state and creates none of it (issue 22:
the hook that recorded a failed pre-flight check could create the controller, hence the session, which
starts the lab); the gate's failures reach the controller made later."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from dagcheck.catalogue import CheckFailure, CheckSpec
from dagcheck.plugin import outcomes, run
from dagcheck.plugin.keys import CONTROLLER_KEY, GATE_FAILURES_KEY, SESSION_KEY
from dagcheck.session import Target

SPEC = CheckSpec("DAG-TEST-001", "a test check", "critical", "why", "fix {server}", ("preflight",), "copies")
TARGET = Target("mbx1", "copies", "DB01", "DB01\\mbx1", phase="preflight", check=SPEC.id)


def _check() -> None:
    """A check function as dagcheck.catalogue.check marks it."""


_check._dagcheck_check = SPEC  # type: ignore[attr-defined]


def _config() -> Any:
    options = {
        "--strict-warnings": False,
        "--server": ["mbx1"],
        "--target": None,
        "--phase": "preflight",
        "--cycle": True,
        "--apply": False,
        "--force": False,
        "--reports-dir": "reports",
    }
    return SimpleNamespace(stash=pytest.Stash(), getoption=lambda name, default=None: options.get(name, default))


def _record_failure(config: Any) -> pytest.TestReport:
    item = SimpleNamespace(
        function=_check,
        config=config,
        stash=pytest.Stash(),
        user_properties=[],
        callspec=SimpleNamespace(params={"target": TARGET}),
    )
    failure = CheckFailure("DB01 is not healthy on mbx1", "Healthy", "FailedAndSuspended")
    call = SimpleNamespace(excinfo=SimpleNamespace(value=failure))
    report = pytest.TestReport("checks/test_x.py::test_x[DB01\\mbx1]", ("x", 1, "x"), {}, "failed", "boom", "call")
    hook = outcomes.pytest_runtest_makereport(item, call)  # type: ignore[arg-type]
    next(hook)
    with pytest.raises(StopIteration):
        hook.send(SimpleNamespace(get_result=lambda: report))
    return report


def test_a_failed_preflight_check_is_recorded_without_creating_the_session_or_controller() -> None:
    config = _config()
    report = _record_failure(config)
    assert report.dagcheck["check_id"] == "DAG-TEST-001"  # type: ignore[attr-defined]
    assert config.stash[GATE_FAILURES_KEY] == ["DAG-TEST-001 [DB01\\mbx1]: DB01 is not healthy on mbx1"]
    assert SESSION_KEY not in config.stash and CONTROLLER_KEY not in config.stash


def test_the_controller_made_later_holds_the_gate_failures_recorded_before_it(monkeypatch) -> None:
    config = _config()
    _record_failure(config)
    monkeypatch.setattr(run, "dagcheck_session", lambda config: SimpleNamespace())
    monkeypatch.setattr(run.safety, "live_writer", lambda config: print)
    ctl = run.controller(config)
    assert ctl.gate_failures == ["DAG-TEST-001 [DB01\\mbx1]: DB01 is not healthy on mbx1"]
    _record_failure(config)  # a later pre-flight failure still reaches it
    assert len(ctl.gate_failures) == 2
