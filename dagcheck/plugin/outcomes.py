"""Each check's outcome as data: an uncollectable object fails its check (a verdict, not an error),
every verdict carries its id, severity, expected, actual and remediation (JUnit properties and the
report's rows), a waiver turns a failure into a waived one, every result is recorded for the results
file, a failed pre-flight check closes the gate, and the run's verdict gives the exit status.

Its hooks read config.stash and never create the session or the controller: a result is recorded
from what the run already has."""

from __future__ import annotations

from typing import Any

import pytest

from dagcheck import safety
from dagcheck.catalogue import CheckFailure, CheckSpec
from dagcheck.collect import SourceFailed, describe
from dagcheck.plugin.fixtures import Uncollectable
from dagcheck.plugin.keys import (
    CONTROLLER_KEY,
    GATE_FAILURES_KEY,
    INVENTORY_KEY,
    KEYWORDS_KEY,
    MAINTENANCE_KEY,
    SESSION_KEY,
    STATE_KEY,
    VERDICT_KEY,
    ReportState,
)
from dagcheck.plugin.parametrize import spec_of
from dagcheck.plugin.scope import runs_checks
from dagcheck.report.results import CheckResult, area_of
from dagcheck.report.waivers import Waivers, parse
from dagcheck.session import DagcheckSession, Target


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    # An unreachable server or a failed cmdlet fails that server's checks with the reason: a verdict
    # ("cannot show compliance"), not a test error.
    if spec_of(pyfuncitem.function) is None:
        return None
    value = pyfuncitem.funcargs.get("item")
    if isinstance(value, Uncollectable):
        pytest.fail(f"could not collect: {value.reason}", pytrace=False)
    reason = None
    try:
        pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames})
    except SourceFailed as exc:  # a second source the check reads (another member's) could not be collected
        reason = str(exc)
    if reason is not None:
        pytest.fail(f"could not collect: {reason}", pytrace=False)
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    spec = spec_of(getattr(item, "function", None))
    if spec is not None:
        # pytest gives each of a check's three reports its own copy of the item's keywords, and keeps every
        # report to the end of the run (its statistics, pytest-html): one dict serves all three (they are equal).
        report.keywords = item.stash.setdefault(KEYWORDS_KEY, report.keywords)
    if spec is None or report.when != "call" and not (report.when == "setup" and report.failed):
        return
    target: Target | None = item.callspec.params.get("target") if hasattr(item, "callspec") else None
    failure = call.excinfo.value if call.excinfo is not None and isinstance(call.excinfo.value, CheckFailure) else None
    if failure is not None:
        report.longrepr = failure.message
    props = _properties(spec, target, failure, report.failed)
    if (
        report.failed
        and target is not None
        and target.phase == "preflight"
        and (spec.severity == "critical" or item.config.getoption("--strict-warnings"))
    ):
        # The gate that stands before entering maintenance (dagcheck.plugin.run.controller hands it over).
        item.config.stash.setdefault(GATE_FAILURES_KEY, []).append(
            f"{spec.id} [{target.label}]: {failure.message if failure else report.longreprtext[:200]}"
        )
    for key, value in props.items():
        if value or key not in ("expected", "actual", "remediation"):  # a pass has none: no empty elements in JUnit
            pair = (key, value)  # one tuple for both lists: a fleet run keeps every report to its end
            report.user_properties.append(pair)
            item.user_properties.append(pair)  # junitxml reads them from the teardown report
    report.dagcheck = props  # type: ignore[attr-defined]


def _properties(spec: CheckSpec, target: Target | None, failure: CheckFailure | None, failed: bool) -> dict[str, str]:
    remediation = (
        failure.remediation
        if failure and failure.remediation
        else spec.remediation.format(server=target.server if target else "", key=target.key if target else "")
    )
    return {
        "check_id": spec.id,
        "title": spec.title,
        "severity": spec.severity,
        "server": target.server if target else "",
        "object": target.label if target else "",
        "expected": failure.expected if failure else "",
        "actual": failure.actual if failure else "",
        "remediation": remediation if failed else "",
        "phase": target.phase if target else "",
    }


def commands_behind(session: DagcheckSession, source: str, server: str, phase: str) -> list[Any]:
    """The invocations behind a server's copy of a source (a DAG-wide one: the member that was asked)."""
    dag = session.inventory.dag_of(server) if server else None
    asked = session.collector.server_asked(source, server, phase)
    return session.transcript.matching(asked, describe(source, server, session.inventory.expectations, dag.name if dag else None))


def waivers_of(config: pytest.Config, state: ReportState) -> Waivers:
    """The inventory's waivers, parsed once per run."""
    if state.waivers is None:
        inventory = config.stash[INVENTORY_KEY]
        state.waivers = Waivers(parse(inventory.waivers, inventory.file))
    return state.waivers


def _commands(config: pytest.Config, state: ReportState, spec: Any, server: str, phase: str = "health") -> list[str]:
    """The command lines behind a verdict. Once per source, server and phase: every check of that source
    on that server shares them (the source was fetched once, before its first check ran)."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        return []
    key = (spec.source, server.lower(), phase)
    found = state.commands.get(key)
    if not found:  # none yet (a check skipped before its source was fetched): asked again next time
        found = state.commands[key] = sorted(
            {
                f"[{i.server}/{i.endpoint.value}] {i.command.render()}"
                for i in commands_behind(session, spec.source, server, phase)
            }
        )
    return found  # one list for every check that shares the source: a fleet run keeps every result to its end


@pytest.hookimpl(hookwrapper=True, tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_record(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Outermost (tryfirst): sees the report with its properties, applies a waiver, records the result."""
    outcome = yield
    state = item.config.stash.get(STATE_KEY, None)
    spec = spec_of(getattr(item, "function", None))
    if state is None or spec is None:
        return
    report = outcome.get_result()
    props = getattr(report, "dagcheck", None)
    target = item.callspec.params.get("target") if hasattr(item, "callspec") else None
    if props is None:
        if not (report.when == "setup" and report.skipped):
            return
        props = {
            "check_id": spec.id,
            "title": spec.title,
            "severity": spec.severity,
            "server": getattr(target, "server", ""),
            "object": getattr(target, "label", ""),
            "expected": "",
            "actual": "",
            "remediation": "",
            "phase": getattr(target, "phase", ""),
        }
    waiver = None
    if report.failed:
        waiver = waivers_of(item.config, state).find(spec.id, props["server"], props["object"])
        if waiver is not None:
            # xfail-like: pytest counts it as xfailed, so neither the exit status nor the gate counts it.
            report.outcome = "skipped"
            report.wasxfail = f"waived: {waiver.reason} (owner {waiver.owner}, until {waiver.expires})"
    if waiver is not None:
        result = "waived"
    elif report.failed:
        result = "fail" if spec.severity == "critical" else "warn"
    elif report.skipped:
        result = "not-checked"
    else:
        result = "pass"
    message = report.longreprtext[:500] if report.failed or report.skipped else ""
    remediation = props["remediation"] or (
        spec.remediation.format(server=props["server"], key=getattr(target, "key", "")) if result != "pass" else ""
    )
    commands = _commands(item.config, state, spec, props["server"], props["phase"] or "health") if props["server"] else []
    made = CheckResult(
        id=spec.id,
        title=spec.title,
        severity=spec.severity,
        area=area_of(spec.id),
        server=props["server"],
        object=props["object"],
        phase=props["phase"],
        outcome=result,
        expected=props["expected"],
        actual=props["actual"],
        message=message,
        remediation=remediation,
        commands=commands,
        waiver=waiver.describe() if waiver else None,
    )
    state.checks.append(made)
    if result != "pass":
        state.not_passed.append((item.nodeid, made))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The gate: a failed critical check fails the run; failed warnings are reported (as failures, in
    # the report and JUnit) but leave the exit status 0 unless --strict-warnings. A server that could not
    # be checked gives dagcheck's own exit status (safety.EXIT_BLIND), so a scheduler tells a blind run
    # from an unhealthy DAG.
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not runs_checks(session.config):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    failed = reporter.stats.get("failed", []) if reporter is not None else []
    dc = session.config.stash.get(SESSION_KEY, None)
    states = dc.transport.states if dc is not None else None
    blind = states.blind() if states is not None else {}
    ctl = session.config.stash.get(CONTROLLER_KEY, None)
    stopped = [r for r in (ctl.results.values() if ctl else ()) if not r.ok]
    verdict = safety.verdict(failed, blind, stopped, session.config.getoption("--strict-warnings"))
    # A member in planned maintenance was not checked: the last line says so rather than "every server checked".
    verdict.not_checked = [
        f"{s.server} (planned maintenance: {s.reason}, by {s.by}, until "
        f"{s.until.isoformat(timespec='seconds') if s.until else 'the end of the transition'})"
        for s in session.config.stash.get(MAINTENANCE_KEY, {}).values()
        if s is not None and s.planned
    ]
    session.exitstatus = verdict.exit_code
    session.config.stash[VERDICT_KEY] = verdict
    if reporter is not None and blind:
        # One line per blind server at the end, instead of one FAILURES block per check it could not judge.
        reporter.stats["failed"] = [r for r in failed if r not in verdict.blind_reports]
        if verdict.blind_reports:
            reporter.stats["blind"] = list(verdict.blind_reports)
