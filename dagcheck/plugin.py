"""The pytest plugin: options, markers, parametrization from the inventory, fixtures, report data."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

import pytest

from dagcheck import drift as config_drift
from dagcheck import locate, safety
from dagcheck.catalogue import CATALOGUE, CheckFailure, CheckSpec
from dagcheck.collect import SourceFailed, describe
from dagcheck.context import DagView
from dagcheck.errors import InventoryError
from dagcheck.files import private_dir
from dagcheck.inventory import Expectations, Inventory, load_inventory
from dagcheck.maintenance.controller import PHASE_ORDER, Controller, run_phases
from dagcheck.maintenance.planned import MaintenanceState, state_of, with_rolling_windows
from dagcheck.options import ROOT, add_options
from dagcheck.remote.replay import ReplayError
from dagcheck.remote.replay import check_folder as check_replay_folder
from dagcheck.session import DagcheckSession, Target

# The verdict-first summary, results JSON, history and waivers (issue 11) live in their own plugin.
pytest_plugins = ["dagcheck.report.plugin", "dagcheck.lifecycle_plugin"]  # tables: issue 12

PHASE_MARKERS = {
    "health": "nightly DAG health checks",
    "preflight": "the gate before patching a DAG member",
    "maintenance": "the server is fully in maintenance",
    "postflight": "the server is fully back in service",
}
INVENTORY_KEY = pytest.StashKey[Inventory]()
VERDICT_KEY = pytest.StashKey["safety.Verdict"]()
PROGRESS_KEY = pytest.StashKey["safety.CollectionProgress"]()
SESSION_KEY = pytest.StashKey[DagcheckSession]()
CONTROLLER_KEY = pytest.StashKey[Controller]()
MAINTENANCE_KEY = pytest.StashKey[dict[str, MaintenanceState | None]]()
NOW_KEY = pytest.StashKey[dt.datetime]()
NOTES_KEY = pytest.StashKey[list[str]]()
DRIFT_KEY = pytest.StashKey[dict[str, "config_drift.Drift | config_drift.BaselineError | str"]]()
KEYWORDS_KEY = pytest.StashKey[dict[str, Any]]()
LOCATED_KEY = pytest.StashKey["locate.Found"]()
FORGOTTEN_CHECK = "DAG-MAINT-001"


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # Installed, dagcheck registers its options through the "dagcheck" pytest11 entry point, early
    # enough that `--inventory /elsewhere/prod.yml` is not mistaken for a test path; from a bare
    # checkout (no install) this plugin adds them itself.
    if not pluginmanager.has_plugin("dagcheck"):
        add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    _locate_inventory(config)
    # --rolling drives whole pytest runs per member (dagcheck/maintenance/rolling.py), so it replaces this one.
    if config.getoption("--rolling", None):
        from dagcheck.maintenance.rolling import main_from_config

        return main_from_config(config)
    return None


def _runs_checks(config: pytest.Config) -> bool:
    args = [a for a in config.args if not a.startswith("-")] or [str(config.rootpath)]
    return any("checks" in Path(a).parts or Path(a).resolve() == ROOT for a in args)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: the report paths must be set before pytest-html and junitxml read them.
    for phase, text in PHASE_MARKERS.items():
        config.addinivalue_line("markers", f"{phase}: {text}")
    if config.inipath is None:
        # Each check's id, severity, expected, actual and remediation go into JUnit as <property>
        # elements, which only the legacy (xunit1) family carries. Set here too, because pytest finds no
        # ini file when an --inventory path outside the repository decides its root directory.
        config._inicache["junit_family"] = "legacy"  # type: ignore[attr-defined]
    _locate_inventory(config)
    try:
        inventory = load_inventory(config.getoption("--inventory"))
        # A rolling run in progress on this host is a patch window of its DAG (issue 10).
        inventory = with_rolling_windows(inventory, config.getoption("--reports-dir"))
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[INVENTORY_KEY] = inventory
    for name in (config.getoption("--server") or []):
        try:
            inventory.server(name)
        except KeyError:
            raise pytest.UsageError(f"--server {name}: not in {inventory.file}") from None
    needs_one = config.getoption("--phase") == "maintenance" or config.getoption("--cycle")
    if needs_one and len(config.getoption("--server") or []) != 1:
        raise pytest.UsageError("--phase maintenance and --cycle act on one server: name it with --server")
    if config.getoption("--target"):
        try:
            inventory.server(config.getoption("--target"))
        except KeyError:
            raise pytest.UsageError(f"--target {config.getoption('--target')}: not in {inventory.file}") from None
    if config.getoption("--replay"):
        if config.getoption("--save"):
            raise pytest.UsageError("--replay reads saved data and --save writes it: use one of them")
        if config.getoption("--apply") or config.getoption("--cycle") or config.getoption("--phase") == "maintenance":
            raise pytest.UsageError("--replay analyses saved data offline: it cannot perform or verify a transition "
                                    "(no --apply, --cycle or --phase maintenance)")
        try:
            check_replay_folder(config.getoption("--replay"))
        except ReplayError as exc:
            raise pytest.UsageError(str(exc)) from None
    if config.getoption("--dag"):
        try:
            inventory.dag(config.getoption("--dag"))
        except KeyError:
            raise pytest.UsageError(f"--dag {config.getoption('--dag')}: not in {inventory.file}") from None
    if (misuse := safety.misuse(config, inventory)) is not None:
        raise pytest.UsageError(misuse)  # before the lab starts or a single request goes out
    if _runs_checks(config):
        config.pluginmanager.register(_LastLine(), "dagcheck-last-line")
        if not config.getoption("markexpr"):
            config.option.markexpr = " or ".join(_run_phases(config))
        reports = Path(config.getoption("--reports-dir"))
        private_dir(reports)  # owner-only when dagcheck creates it (dagcheck.files)
        stem = report_stem("cycle" if config.getoption("--cycle") else config.getoption("--phase"),
                           config.getoption("--server") or [])
        if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
            config.option.htmlpath = str(reports / f"{stem}.html")
            config.option.self_contained_html = True
        if not getattr(config.option, "xmlpath", None):
            config.option.xmlpath = str(reports / ("junit.xml" if stem == "dagcheck" else f"{stem}.xml"))


def _locate_inventory(config: pytest.Config) -> None:
    """Without --inventory, the first inventory of dagcheck.locate's order; the embedded lab only when there is
    none (remembered, so that the run says so on its first line)."""
    if LOCATED_KEY in config.stash:
        return
    found = locate.find(config.getoption("--inventory"))
    config.stash[LOCATED_KEY] = found
    config.option.inventory = str(found.path)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """A run on a simulated lab says so on its first line, before pytest's own header."""
    config = session.config
    inventory = config.stash.get(INVENTORY_KEY, None)
    found = config.stash.get(LOCATED_KEY, None)
    if inventory is None or inventory.lab is None or not _runs_checks(config):
        return
    line = (locate.lab_notice(found) if found is not None and found.is_embedded_lab
            else f"dagcheck: {inventory.file} is a {locate.SIMULATED}, not a real organisation")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line, yellow=True, bold=True)


def report_stem(phase: str, servers: list[str]) -> str:
    """reports/dagcheck.html for the nightly health run; one file per phase, server and time otherwise,
    so that a pre-flight and a post-maintenance report can be kept side by side."""
    if phase == "health" and not servers:
        return "dagcheck"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{phase}-{'-'.join(s.lower() for s in servers) or 'all'}-{stamp}"


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def _run_phases(config: pytest.Config) -> list[str]:
    return run_phases(config.getoption("--phase"), config.getoption("--cycle"))


def controller(config: pytest.Config) -> Controller:
    if CONTROLLER_KEY not in config.stash:
        servers = config.getoption("--server") or []
        progress = safety.live_writer(config)  # shown as it happens, also without -s
        config.stash[CONTROLLER_KEY] = Controller(
            dagcheck_session(config), servers[0] if len(servers) == 1 else None, config.getoption("--target"),
            _run_phases(config), config.getoption("--apply"), config.getoption("--force"),
            config.getoption("--reports-dir"), progress)
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
        cache[server.lower()] = state_of(session.collector, session.inventory, server, phase,
                                         config.getoption("--reports-dir"), run_now(config))
    return cache[server.lower()]


def pytest_collection_finish(session: pytest.Session) -> None:
    progress = session.config.stash.get(PROGRESS_KEY, None)
    if progress is not None:
        progress.finish()


def _spec(function: Any) -> CheckSpec | None:
    return getattr(function, "_dagcheck_check", None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    spec = _spec(metafunc.function)
    if spec is None or "target" not in metafunc.fixturenames:
        return
    run = _run_phases(metafunc.config)
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





@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> Inventory:
    return request.config.stash[INVENTORY_KEY]


@pytest.fixture(scope="session")
def expect(inventory: Inventory) -> Expectations:
    return inventory.expectations


class Uncollectable:
    """Stands in for the object when its source could not be collected; the check then fails (not errors)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


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
    return DagView(target.server, session.inventory, session.collector, target.phase,
                   pytestconfig.getoption("--target"),
                   lambda member: maintenance_state(pytestconfig, member, target.phase), run_now(pytestconfig),
                   pytestconfig.stash.setdefault(NOTES_KEY, []))


@pytest.fixture
def maintenance(pytestconfig: pytest.Config, target: Target) -> MaintenanceState | None:
    """The target member's maintenance, planned or forgotten (None: in service, or not the nightly run)."""
    return maintenance_state(pytestconfig, target.server, target.phase)


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
            cache[server.lower()] = (f"no configuration baseline for {server} ({config_drift.path_for(reports_dir, server)}): "
                                     "it is saved when dagcheck enters maintenance with --apply")
        elif baseline is not None:
            snap = session.collector.snapshot(server, phase)
            after, unread = config_drift.read_settings(snap.get, server)
            critical = (*config_drift.INVENTORY_EXPECTED, *session.inventory.expectations.drift_critical)
            try:
                cache[server.lower()] = config_drift.compare(baseline, after, unread, critical)
            except config_drift.BaselineError as exc:  # a baseline of another build line: both checks fail with it
                cache[server.lower()] = exc
    return cache[server.lower()]


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


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    # An unreachable server or a failed cmdlet fails that server's checks with the reason: a verdict
    # ("cannot show compliance"), not a test error.
    if _spec(pyfuncitem.function) is None:
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


# ---- reporting ------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    spec = _spec(getattr(item, "function", None))
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
    remediation = (failure.remediation if failure and failure.remediation else
                   spec.remediation.format(server=target.server if target else "", key=target.key if target else ""))
    props = {
        "check_id": spec.id, "title": spec.title, "severity": spec.severity,
        "server": target.server if target else "", "object": target.label if target else "",
        "expected": failure.expected if failure else "", "actual": failure.actual if failure else "",
        "remediation": remediation if report.failed else "",
        "phase": target.phase if target else "",
    }
    if report.failed and target is not None and target.phase == "preflight" and (
            spec.severity == "critical" or item.config.getoption("--strict-warnings")):
        # The gate that stands before entering maintenance.
        controller(item.config).gate_failures.append(f"{spec.id} [{target.label}]: {failure.message if failure else report.longreprtext[:200]}")
    for key, value in props.items():
        if value or key not in ("expected", "actual", "remediation"):  # a pass has none: no empty elements in JUnit
            pair = (key, value)  # one tuple for both lists: a fleet run keeps every report to its end
            report.user_properties.append(pair)
            item.user_properties.append(pair)  # junitxml reads them from the teardown report
    report.dagcheck = props  # type: ignore[attr-defined]
    pytest_html = item.config.pluginmanager.getplugin("html")
    if pytest_html is not None and report.failed:
        # Only a verdict that is not a pass has a row of its own in the HTML report (dagcheck.report.detail);
        # a pass's commands are in the results file.
        session = item.config.stash.get(SESSION_KEY, None)
        commands = []
        if session is not None and target is not None:
            commands = commands_behind(session, spec.source, target.server, target.phase)
        extras = getattr(report, "extras", [])
        extras.append(pytest_html.extras.html(_details_html(spec, props, commands, report.failed)))
        report.extras = extras


def commands_behind(session: DagcheckSession, source: str, server: str, phase: str) -> list[Any]:
    """The invocations behind a server's copy of a source (a DAG-wide one: the member that was asked)."""
    dag = session.inventory.dag_of(server) if server else None
    asked = session.collector.server_asked(source, server, phase)
    return session.transcript.matching(asked, describe(source, server, session.inventory.expectations,
                                                       dag.name if dag else None))


def _details_html(spec: CheckSpec, props: dict[str, str], commands: list[Any], failed: bool) -> str:
    rows = [("Check", f"{spec.id} — {spec.title}"), ("Severity", spec.severity), ("Server", props["server"]),
            ("Object", props["object"]), ("Why it matters", spec.rationale)]
    if failed:
        rows += [("Expected", props["expected"]), ("Actual", props["actual"]), ("Remediation", props["remediation"])]
    table = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                    for k, v in rows if v)
    transcript = "".join(
        f"<li><code>[{html.escape(i.server)}/{i.endpoint.value}] {html.escape(i.command.render())}</code> — "
        f"{i.outcome}, {i.objects} object(s), {i.duration * 1000:.0f} ms{(': ' + html.escape(i.message)) if i.message else ''}</li>"
        for i in commands
    )
    return f"<div class='dagcheck'><table>{table}</table><p>Commands behind this verdict:</p><ul>{transcript}</ul></div>"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The gate: a failed critical check fails the run; failed warnings are reported (as failures, in
    # the report and JUnit) but leave the exit status 0 unless --strict-warnings. A server that could not
    # be checked gives dagcheck's own exit status (safety.EXIT_BLIND), so a scheduler tells a blind run
    # from an unhealthy DAG.
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not _runs_checks(session.config):
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
    verdict.not_checked = [f"{s.server} (planned maintenance: {s.reason}, by {s.by}, until "
                           f"{s.until.isoformat(timespec='seconds') if s.until else 'the end of the transition'})"
                           for s in session.config.stash.get(MAINTENANCE_KEY, {}).values() if s is not None and s.planned]
    session.exitstatus = verdict.exit_code
    session.config.stash[VERDICT_KEY] = verdict
    if reporter is not None and blind:
        # One line per blind server at the end, instead of one FAILURES block per check it could not judge.
        reporter.stats["failed"] = [r for r in failed if r not in verdict.blind_reports]
        if verdict.blind_reports:
            reporter.stats["blind"] = list(verdict.blind_reports)



class _LastLine:
    """Prints dagcheck's verdict after pytest's own statistics line, so the run's last line says whether
    the DAG is unhealthy, some server could not be checked, or both (and the exit status)."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session):  # type: ignore[no-untyped-def]
        result = yield
        verdict = session.config.stash.get(VERDICT_KEY, None)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if verdict is not None and reporter is not None:
            reporter.write_line(verdict.line(), bold=True, red=verdict.exit_code != 0, green=verdict.exit_code == 0)
        return result


def _unverified_tls(config: pytest.Config) -> list[str]:
    session = config.stash.get(SESSION_KEY, None)
    return sorted(session.transport.unverified_tls) if session is not None else []


def cleartext_lines(config: pytest.Config) -> list[str]:
    """The servers this run reached in clear (connection.allow_cleartext: true), for the console, the summary
    and the mail (issue 24, item 8)."""
    session = config.stash.get(SESSION_KEY, None)
    names = sorted(session.transport.cleartext) if session is not None else []
    return [f"WARNING: credentials and messages went in CLEAR (Basic or unencrypted over http) to {', '.join(names)} "
            "(connection.allow_cleartext: true in the inventory)"] if names else []


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    unverified = _unverified_tls(config)
    if unverified:
        terminalreporter.write_line(f"WARNING: TLS certificates were NOT verified for {', '.join(unverified)} "
                                    "(connection.verify_tls: false in the inventory)", red=True, bold=True)
    for line in cleartext_lines(config):
        terminalreporter.write_line(line, red=True, bold=True)
    ctl = config.stash.get(CONTROLLER_KEY, None)
    for result in (ctl.results.values() if ctl else ()):
        terminalreporter.section(f"dagcheck {result.direction} maintenance: {result.server}")
        for line in _transition_lines(result):
            terminalreporter.write_line(line)
    states = [s for s in config.stash.get(MAINTENANCE_KEY, {}).values() if s is not None]
    for line in [s.describe() for s in states] + list(dict.fromkeys(config.stash.get(NOTES_KEY, []))):
        terminalreporter.write_line(f"dagcheck: {line}", yellow=True)
    verdict = config.stash.get(VERDICT_KEY, None)
    for line in (verdict.blind_lines() if verdict is not None else ()):
        terminalreporter.write_line(line, red=True, bold=True)
    failed = [r for r in terminalreporter.stats.get("failed", []) if getattr(r, "dagcheck", None)]
    warnings = [r for r in failed if r.dagcheck["severity"] == "warning"]
    critical = len(failed) - len(warnings)
    if failed:
        verdict = "FAILS" if critical or config.getoption("--strict-warnings") else "PASSES"
        terminalreporter.write_line(
            f"dagcheck gate {verdict}: {critical} critical and {len(warnings)} warning check(s) failed"
            + ("" if config.getoption("--strict-warnings") else " (warnings alone do not fail the gate; "
               "--strict-warnings makes them)"), bold=True, red=verdict == "FAILS", yellow=verdict == "PASSES")


def _transition_lines(result: Any) -> list[str]:
    head = (f"{'Applied' if result.applied else 'Dry-run (nothing changed; --apply performs it)'}: "
            f"{result.direction} maintenance on {result.server}" + (f", messages to {result.target}" if result.target else ""))
    lines = [head]
    if result.resumed_from:
        lines.append(f"Journal: {result.resumed_from}")
    lines += [f"REFUSED [{r.interlock}]: {r.reason}" for r in result.refusals]
    lines += [f"FORCED past [{r.interlock}]: {r.reason}" for r in result.forced]
    for step in result.steps:
        timing = f" ({step.duration:.1f} s)" if step.outcome in ("done", "failed") else ""
        lines.append(f"  {step.outcome:>12}  {step.title}{timing}" + (f": {step.detail}" if step.detail else ""))
        lines += [f"                {c}" for c in step.commands if step.outcome != "already done"]
    lines += [f"Note: {n}" for n in result.notes]
    if result.error:
        lines.append(f"STOPPED: {result.error}")
    return lines


def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session) -> None:
    unverified = _unverified_tls(session.config)
    if unverified:
        prefix.append(f"<p style='color:#b00;font-weight:bold'>TLS certificates were NOT verified for "
                      f"{html.escape(', '.join(unverified))} (connection.verify_tls: false).</p>")
    ctl = session.config.stash.get(CONTROLLER_KEY, None)
    for result in (ctl.results.values() if ctl else ()):
        body = html.escape("\n".join(_transition_lines(result)))
        prefix.append(f"<h2>Maintenance transition: {html.escape(result.direction)}</h2><pre>{body}</pre>")
    dc = session.config.stash.get(SESSION_KEY, None)
    if dc is not None and ctl is not None and ctl.results:
        changes = [i for i in dc.transcript.invocations if not i.command.cmdlet.startswith(("Get-", "Test-"))
                   and i.endpoint.value != "winrs"]
        rows = "".join(f"<li><code>[{html.escape(i.server)}/{i.endpoint.value}] {html.escape(i.command.render())}</code> "
                       f"— {i.outcome}, {i.duration * 1000:.0f} ms</li>" for i in changes)
        prefix.append(f"<h3>Commands that changed servers</h3><ul>{rows or '<li>none</li>'}</ul>")


def pytest_html_results_table_header(cells: list[str]) -> None:
    cells.insert(1, "<th>Check</th>")
    cells.insert(2, "<th>Severity</th>")
    cells.insert(3, "<th>Server</th>")


def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    props = getattr(report, "dagcheck", None) or {}
    cells.insert(1, f"<td>{html.escape(props.get('check_id', ''))}</td>")
    cells.insert(2, f"<td>{html.escape(props.get('severity', ''))}</td>")
    cells.insert(3, f"<td>{html.escape(props.get('server', ''))}</td>")


def pytest_html_report_title(report: Any) -> None:
    report.title = "dagcheck — Exchange DAG compliance report"
