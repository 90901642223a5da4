"""The pytest side of dagcheck's reports: gathers every check's outcome as data, applies waivers,
writes the results JSON into the history folder and the verdict-first summary (standalone
reports/summary.html, and at the top of the pytest-html report). In the pytest-html report passes
are grouped per check (dagcheck/report/detail.py); the results table keeps the other verdicts.

Registered by dagcheck.plugin (pytest_plugins), so it is active exactly where the checks are.
"""

from __future__ import annotations

import base64
import datetime as dt
import smtplib
import sys
from pathlib import Path
from typing import Any

import pytest

from dagcheck.files import private_dir, restrict, write_private
from dagcheck.options import ROOT
from dagcheck.report import detail, history, mail, summary, trend
from dagcheck.report.results import CheckResult, RunResults, area_of, stamp, write
from dagcheck.report.waivers import Waivers, parse

STATE_KEY = pytest.StashKey["ReportState"]()


class ReportState:
    def __init__(self, kind: str, stem: str, reports: Path) -> None:
        self.kind = kind  # "nightly" or "adhoc"
        self.stem = stem
        self.reports = reports
        self.started = dt.datetime.now(dt.UTC)
        self.checks: list[CheckResult] = []
        self.waivers: Waivers | None = None
        self.summary_html: str | None = None
        self.results_path: Path | None = None
        self.summary_path: Path | None = None
        self.results: RunResults | None = None
        self.changed = False
        self.mail_outcome: str | None = None
        self.previous: RunResults | None = None  # the nightly run compared with (its digest), for the mail
        self.trend_png: bytes | None = None  # the trend as the mail's related image part
        self.not_passed: list[tuple[str, CheckResult]] = []  # (test id, verdict): the results table without JavaScript
        self.commands: dict[tuple[str, str, str], list[str]] = {}  # (source, server, phase) -> command lines


def _is_check_run(config: pytest.Config) -> bool:
    from dagcheck.plugin import _runs_checks

    return _runs_checks(config)


def run_kind(config: pytest.Config) -> str:
    """nightly only for the whole live health run over the whole inventory; anything narrower is ad hoc,
    and so is a replay of saved data (yesterday's data must not enter tonight's history)."""
    whole = all(Path(a.split("::")[0]).resolve() in (ROOT, ROOT / "checks")
                for a in config.args if not a.startswith("-"))
    narrowed = (config.getoption("keyword") or config.getoption("markexpr") or config.getoption("collectonly")
                or config.getoption("--server") or config.getoption("--dag") or config.getoption("--cycle")
                or config.getoption("--phase") != "health" or config.getoption("lf", False) or not whole
                or config.getoption("--replay", None))
    return "adhoc" if narrowed else "nightly"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs before dagcheck.plugin's configure (both tryfirst; this one registers later and pluggy
    # calls it first), so markexpr is still what the user gave.
    if not _is_check_run(config):
        return
    kind = run_kind(config)
    reports = Path(config.getoption("--reports-dir"))
    stem = "dagcheck" if kind == "nightly" else f"adhoc-{config.getoption('--phase')}-{stamp()}"
    if kind == "adhoc" and config.getoption("--phase") == "health" and not config.getoption("--server") \
            and not config.getoption("--cycle"):
        # dagcheck.plugin would name this reports/dagcheck.html: keep the nightly report untouched.
        private_dir(reports)
        if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
            config.option.htmlpath = str(reports / f"{stem}.html")
            config.option.self_contained_html = True
        if not getattr(config.option, "xmlpath", None):
            config.option.xmlpath = str(reports / f"{stem}.xml")
    config.stash[STATE_KEY] = ReportState(kind, stem, reports)
    _register_mailer(config)


def _waivers(config: pytest.Config, state: ReportState) -> Waivers:
    if state.waivers is None:
        from dagcheck.plugin import INVENTORY_KEY

        inventory = config.stash[INVENTORY_KEY]
        state.waivers = Waivers(parse(inventory.waivers, inventory.file))
    return state.waivers


def _commands(config: pytest.Config, state: ReportState, spec: Any, server: str, phase: str = "health") -> list[str]:
    """The command lines behind a verdict. Once per source, server and phase: every check of that source
    on that server shares them (the source was fetched once, before its first check ran)."""
    from dagcheck.plugin import SESSION_KEY, commands_behind

    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        return []
    key = (spec.source, server.lower(), phase)
    found = state.commands.get(key)
    if not found:  # none yet (a check skipped before its source was fetched): asked again next time
        found = state.commands[key] = sorted({f"[{i.server}/{i.endpoint.value}] {i.command.render()}"
                                              for i in commands_behind(session, spec.source, server, phase)})
    return list(found)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    state = item.config.stash.get(STATE_KEY, None)
    spec = getattr(getattr(item, "function", None), "_dagcheck_check", None)
    if state is None or spec is None:
        return
    report = outcome.get_result()
    props = getattr(report, "dagcheck", None)
    target = item.callspec.params.get("target") if hasattr(item, "callspec") else None
    if props is None:
        if not (report.when == "setup" and report.skipped):
            return
        props = {"check_id": spec.id, "title": spec.title, "severity": spec.severity,
                 "server": getattr(target, "server", ""), "object": getattr(target, "label", ""),
                 "expected": "", "actual": "", "remediation": "", "phase": getattr(target, "phase", "")}
    waiver = None
    if report.failed:
        waiver = _waivers(item.config, state).find(spec.id, props["server"], props["object"])
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
    state.checks.append(made := CheckResult(
        id=spec.id, title=spec.title, severity=spec.severity, area=area_of(spec.id), server=props["server"],
        object=props["object"], phase=props["phase"], outcome=result, expected=props["expected"],
        actual=props["actual"], message=message, remediation=props["remediation"] or (
            spec.remediation.format(server=props["server"], key=getattr(target, "key", "")) if result != "pass" else ""),
        commands=_commands(item.config, state, spec, props["server"], props["phase"] or "health") if props["server"] else [],
        waiver=waiver.describe() if waiver else None))
    if result != "pass":
        state.not_passed.append((item.nodeid, made))


def _scope(config: pytest.Config) -> tuple[str, dict[str, list[str]]]:
    from dagcheck.plugin import INVENTORY_KEY

    inventory = config.stash[INVENTORY_KEY]
    wanted = {s.lower() for s in config.getoption("--server") or []}
    only_dag = (config.getoption("--dag") or "").lower()
    dags: dict[str, list[str]] = {}
    for server in inventory.servers:
        if wanted and server.name.lower() not in wanted:
            continue
        if only_dag and (server.dag or "").lower() != only_dag:
            continue
        dags.setdefault(server.dag or "(no DAG)", []).append(server.name)
    return history.scope_of(s for v in dags.values() for s in v), dags


def _notices(config: pytest.Config) -> list[str]:
    """What the reader must know about the run itself, beside the verdicts: a stale build or lifecycle
    table (its verdicts may miss newer releases)."""
    from dagcheck.lifecycle_plugin import STALE_KEY
    from dagcheck.plugin import _unverified_tls, cleartext_lines

    unverified = _unverified_tls(config)
    tls = [f"WARNING: TLS certificates were NOT verified for {', '.join(unverified)} (connection.verify_tls: false "
           "in the inventory)"] if unverified else []
    return [f"Stale table: {line}" for line in config.stash.get(STALE_KEY, [])] + cleartext_lines(config) + tls


def _maintenance(config: pytest.Config) -> list[dict[str, Any]]:
    """The members whose checks were skipped for planned maintenance, with its reason, owner and end
    (dagcheck.maintenance.planned), so that the summary and the mail say why their cells are grey."""
    from dagcheck.plugin import MAINTENANCE_KEY

    out = []
    for state in config.stash.get(MAINTENANCE_KEY, {}).values():
        if state is not None and state.planned:
            out.append({"server": state.server, "planned": True, "reason": state.reason, "by": state.by,
                        "until": state.until.isoformat(timespec="seconds") if state.until else "the end of the transition",
                        "since": state.since.isoformat(timespec="seconds") if state.since else ""})
    return sorted(out, key=lambda m: m["server"].lower())


def _drift(config: pytest.Config) -> list[dict[str, Any]]:
    """The configuration drift the post-maintenance checks compared (dagcheck.plugin.drift_of), per server."""
    from dagcheck.drift import Drift
    from dagcheck.plugin import DRIFT_KEY

    return [d.to_json() for d in config.stash.get(DRIFT_KEY, {}).values() if isinstance(d, Drift)]


def finish(session: pytest.Session) -> ReportState | None:
    """Write the results file and the summary once; returns the state (None outside a check run)."""
    config = session.config
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.summary_html is not None or config.getoption("collectonly"):
        return None if state is None or config.getoption("collectonly") else state
    from dagcheck.plugin import INVENTORY_KEY

    inventory = config.stash[INVENTORY_KEY]
    scope, dags = _scope(config)
    waivers = _waivers(config, state)
    planned = _maintenance(config)
    results = RunResults(
        run={"started": state.started.isoformat(timespec="seconds"),
             "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
             "kind": state.kind, "scope": scope, "phase": config.getoption("--phase"),
             "args": [str(a) for a in config.invocation_params.args], "exit_status": int(session.exitstatus),
             "notices": _notices(config)} | ({"maintenance": planned} if planned else {}),
        inventory={"file": inventory.file, "dags": dags, **({"simulated": True} if inventory.lab is not None else {})},
        checks=state.checks, waivers=waivers.review(),
        drift=_drift(config))
    folder = history.folder(state.reports, state.kind)
    path = folder / f"{stamp(state.started)}.json" if state.kind == "nightly" else folder / f"{state.stem}.json"
    damaged: list[str] = []  # kept history files that could not be read: skipped, named in the console and summary
    previous = history.previous(state.reports, scope, damaged=damaged) if state.kind == "nightly" else None
    if damaged:
        results.run["history_skipped"] = damaged
    if state.kind == "nightly" and previous is None:
        results.run["no_previous"] = history.why_none(state.reports, scope)
    try:
        state.results_path = write(results, path)
        if state.kind == "nightly":
            history.write_digest(results, path)
    except OSError as exc:
        print(f"dagcheck: cannot write the results file {path}: {exc}", file=sys.stderr)
    trend_html = ""
    if state.kind == "nightly":
        state.trend_png = trend.png([made for _, made in history.nightly_digests(state.reports, scope)[-30:]])
        trend_html = trend.img("data:image/png;base64," + base64.b64encode(state.trend_png).decode("ascii")) \
            if state.trend_png else ""
        keep = session.config.getoption("--history-keep")
        keep = keep if keep is not None else inventory.report.get("history_keep", history.DEFAULT_KEEP)
        history.prune(state.reports, int(keep))
    new, resolved = summary.changes(results, previous)
    state.results, state.changed, state.previous = results, bool(new or resolved or previous is None), previous
    state.summary_html = summary.render(results, previous, trend_html)
    out = state.reports / ("summary.html" if state.kind == "nightly" else f"summary-{state.stem}.html")
    try:
        write_private(out, summary.render(results, previous, trend_html, standalone=True))
        state.summary_path = out
    except OSError as exc:
        print(f"dagcheck: cannot write the summary {out}: {exc}", file=sys.stderr)
    return state


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    finish(session)  # before pytest-html writes its report, which asks for the summary below


class _Mailer:
    """Sends once every sessionfinish has run, so that pytest-html has written the report it attaches
    (pytest calls the terminal summary after them)."""

    settings: mail.EmailSettings | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Here the inventory is loaded: a mail set-up that cannot work is a usage error before any check.
        from dagcheck.plugin import INVENTORY_KEY

        config = session.config
        try:
            self.settings = mail.from_run(config.stash[INVENTORY_KEY].report.get("email"),
                                          config.getoption("--mail-to"), config.getoption("--mail-when"),
                                          config.getoption("--smtp"), config.getoption("--mail-from"),
                                          config.getoption("--smtp-security"))
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        session = terminalreporter._session
        state = session.config.stash.get(STATE_KEY, None)
        settings = self.settings
        if state is None or settings is None or state.results is None:
            return
        failing = bool(state.results.failing())
        if not mail.due(settings, failing, state.changed):
            state.mail_outcome = f"not sent (when: {settings.when})"
            return
        line = summary.verdict(state.results)[1]
        html_path = getattr(session.config.option, "htmlpath", None)
        # The body is the summary with the trend as a related part (cid:), never a data: URI.
        body = summary.render(state.results, state.previous, trend.img(f"cid:{trend.CID}") if state.trend_png else "",
                              standalone=True)
        message = mail.build(settings, f"dagcheck: {line}", body, Path(html_path) if html_path else None,
                             summary.text(state.results, state.previous),
                             {trend.CID: state.trend_png} if state.trend_png else None)
        try:
            mail.send(settings, message)
            state.mail_outcome = f"sent to {', '.join(settings.recipients)} via {settings.host}:{settings.port}"
        except (OSError, smtplib.SMTPException, KeyError) as exc:
            # Reported, and the reports on disk stay as written.
            state.mail_outcome = f"FAILED to send via {settings.host}:{settings.port}: {exc}"
            _mail_failed(session, state.mail_outcome)


def _mail_failed(session: pytest.Session, outcome: str) -> None:
    """A mail that was due and not sent gives the run its own exit status, unless the checks already gave it
    a non-zero one (a failed check, a blind server): theirs wins, and the failure is still printed."""
    from dagcheck.plugin import VERDICT_KEY

    if session.exitstatus == 0:
        session.exitstatus = mail.EXIT_MAIL_FAILED
    verdict = session.config.stash.get(VERDICT_KEY, None)
    if verdict is not None:
        verdict.mail_failure = outcome
        if verdict.exit_code == 0:
            verdict.exit_code = mail.EXIT_MAIL_FAILED


def _register_mailer(config: pytest.Config) -> None:
    config.pluginmanager.register(_Mailer(), "dagcheck-report-mailer")


def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session) -> None:
    state = finish(session)
    if state is not None and state.summary_html:
        prefix.insert(0, state.summary_html)
    if state is not None and state.results is not None:
        href, where = detail.results_href(state.results_path, getattr(session.config.option, "htmlpath", None))
        postfix.append(detail.without_javascript(state.not_passed))
        postfix.append(detail.passed_by_check(state.results, href, where))


class _HtmlTable:
    """What the results-table hooks below share within one run (pytest-html's hooks get no config).

    pytest-html 4 counts only the rows it keeps (pytest-html issue #794), so a report without pass rows
    would say "0 Passed". Its report data (the object of pytest_html_report_title) keeps the counts; a
    left-out pass is counted there, so the filter line and "N tests took" stay true. Guarded: without
    that attribute (another pytest-html) the counts are pytest-html's own."""

    data: Any = None
    reports: dict[str, Any] | None = None  # pytest-html's reports of each test, released once its row is made
    left_out: set[str] = set()  # node ids whose passing call has no row: their passing teardown has none either


@pytest.hookimpl(trylast=True)
def pytest_html_report_title(report: Any) -> None:
    _HtmlTable.data, _HtmlTable.left_out = report, set()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _HtmlTable.reports = None
    for plugin in session.config.pluginmanager.get_plugins():
        held = getattr(plugin, "_reports", None)  # pytest-html 4's per-test reports (BaseReport._reports)
        if type(plugin).__module__.startswith("pytest_html") and isinstance(held, dict):
            _HtmlTable.reports = held


@pytest.hookimpl(trylast=True)
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    # trylast: after dagcheck.plugin has added its cells. Emptying the cells is pytest-html's documented
    # way to leave a result out of the table; a passing check is in the section above instead (one
    # row per check) and in the results file.
    if report.when == "teardown" and report.passed and report.nodeid in _HtmlTable.left_out:
        # Else pytest-html files the teardown under the test's id, and the page carries an empty entry per pass.
        _HtmlTable.left_out.discard(report.nodeid)
        del cells[:]
    elif report.when == "call" and report.passed and getattr(report, "dagcheck", None) is not None:
        del cells[:]
        _HtmlTable.left_out.add(report.nodeid)
        if isinstance(getattr(_HtmlTable.data, "outcomes", None), dict):
            try:
                _HtmlTable.data.outcomes = "passed"  # pytest-html's setter adds one
            except (AttributeError, KeyError, TypeError):
                pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_logreport(report: pytest.TestReport):  # type: ignore[no-untyped-def]
    yield
    if report.when == "teardown" and _HtmlTable.reports is not None:
        # pytest-html has made the test's row (at its teardown report) and never reads its reports again, but
        # keeps them by node id to the end: at fleet scale the whole run twice over. Guarded like the counter.
        _HtmlTable.reports.pop(report.nodeid, None)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.summary_html is None:
        return
    for name, path in (("results", state.results_path), ("summary", state.summary_path)):
        if path is not None:
            terminalreporter.write_line(f"dagcheck {name}: {path}")
    for line in (state.results.run.get("history_skipped", []) if state.results is not None else []):
        terminalreporter.write_line(f"dagcheck history: skipped a damaged file: {line}", yellow=True)
    if state.mail_outcome:
        terminalreporter.write_line(f"dagcheck email: {state.mail_outcome}", red=state.mail_outcome.startswith("FAILED"))
    if state.waivers is not None:
        for w in state.waivers.review()["expired"]:
            terminalreporter.write_line(f"dagcheck waiver EXPIRED (the check counts again): {w}", yellow=True)
        for w in state.waivers.review()["unmatched"]:
            terminalreporter.write_line(f"dagcheck waiver matches nothing: {w}", yellow=True)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """pytest-html's report and the JUnit XML are written by their own plugins (at sessionfinish, with the
    umask's mode): made owner-only here, after them, like every file dagcheck keeps (dagcheck.files)."""
    if config.stash.get(STATE_KEY, None) is None:
        return
    for option in ("htmlpath", "xmlpath"):
        restrict(getattr(config.option, option, None))
