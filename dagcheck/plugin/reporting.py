"""The reports of a check run, all in one place: the results JSON in the history folder, the
verdict-first summary (standalone reports/summary.html, and at the top of the pytest-html report), the
trend, the mail, and every pytest-html hook (title, columns, rows, the details of a verdict, the
sections above and below the results table). In the pytest-html report passes are grouped per check
(dagcheck/report/detail.py); the results table keeps the other verdicts.

State lives in config.stash (dagcheck.plugin.keys), never in module or class attributes. pytest-html's
table hooks get no config, so a check run registers one _RunReport object holding its config. No hook
here creates the session or starts the lab: what the run does not have, the report does without.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import smtplib
import sys
from pathlib import Path
from typing import Any

import pytest

from dagcheck.catalogue import CheckSpec
from dagcheck.drift import Drift
from dagcheck.files import private_dir, restrict, write_private
from dagcheck.plugin.keys import (
    CONTROLLER_KEY,
    DRIFT_KEY,
    HTML_TABLE_KEY,
    INVENTORY_KEY,
    MAIL_SETTINGS_KEY,
    MAINTENANCE_KEY,
    SESSION_KEY,
    STALE_KEY,
    STATE_KEY,
    VERDICT_KEY,
    HtmlTable,
    ReportState,
)
from dagcheck.plugin.notices import run_notices, transition_lines, unverified_tls
from dagcheck.plugin.outcomes import commands_behind, waivers_of
from dagcheck.plugin.parametrize import spec_of
from dagcheck.plugin.scope import run_kind, runs_checks
from dagcheck.report import detail, history, mail, summary, trend
from dagcheck.report.results import RunResults, stamp, write

TITLE = "dagcheck — Exchange DAG compliance report"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs before dagcheck.plugin.configure's (both tryfirst; this one registers later and pluggy
    # calls it first), so markexpr is still what the user gave.
    if not runs_checks(config):
        return
    kind = run_kind(config)
    reports = Path(config.getoption("--reports-dir"))
    stem = "dagcheck" if kind == "nightly" else f"adhoc-{config.getoption('--phase')}-{stamp()}"
    if (
        kind == "adhoc"
        and config.getoption("--phase") == "health"
        and not config.getoption("--server")
        and not config.getoption("--cycle")
    ):
        # dagcheck.plugin.configure would name this reports/dagcheck.html: keep the nightly report untouched.
        private_dir(reports)
        if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
            config.option.htmlpath = str(reports / f"{stem}.html")
            config.option.self_contained_html = True
        if not getattr(config.option, "xmlpath", None):
            config.option.xmlpath = str(reports / f"{stem}.xml")
    config.stash[STATE_KEY] = ReportState(kind, stem, reports)
    config.stash[HTML_TABLE_KEY] = HtmlTable()
    config.pluginmanager.register(_RunReport(config), "dagcheck-run-report")


# ---- the results file, the history and the summary ----------------------------------------------


def _scope(config: pytest.Config) -> tuple[str, dict[str, list[str]]]:
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


def _maintenance(config: pytest.Config) -> list[dict[str, Any]]:
    """The members whose checks were skipped for planned maintenance, with its reason, owner and end
    (dagcheck.maintenance.planned), so that the summary and the mail say why their cells are grey."""
    out = []
    for state in config.stash.get(MAINTENANCE_KEY, {}).values():
        if state is not None and state.planned:
            out.append(
                {
                    "server": state.server,
                    "planned": True,
                    "reason": state.reason,
                    "by": state.by,
                    "until": state.until.isoformat(timespec="seconds") if state.until else "the end of the transition",
                    "since": state.since.isoformat(timespec="seconds") if state.since else "",
                }
            )
    return sorted(out, key=lambda m: m["server"].lower())


def _drift(config: pytest.Config) -> list[dict[str, Any]]:
    """The configuration drift the post-maintenance checks compared (dagcheck.plugin.run.drift_of), per server."""
    return [d.to_json() for d in config.stash.get(DRIFT_KEY, {}).values() if isinstance(d, Drift)]


def _results(session: pytest.Session, state: ReportState, scope: str, dags: dict[str, list[str]]) -> RunResults:
    config = session.config
    inventory = config.stash[INVENTORY_KEY]
    waivers = waivers_of(config, state)
    planned = _maintenance(config)
    run = {
        "started": state.started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "kind": state.kind,
        "scope": scope,
        "phase": config.getoption("--phase"),
        "args": [str(a) for a in config.invocation_params.args],
        "exit_status": int(session.exitstatus),
        "notices": run_notices(config),
    }
    return RunResults(
        run=run | ({"maintenance": planned} if planned else {}),
        inventory={"file": inventory.file, "dags": dags, **({"simulated": True} if inventory.lab is not None else {})},
        checks=state.checks,
        waivers=waivers.review(),
        drift=_drift(config),
    )


def _write_results(state: ReportState, results: RunResults, scope: str) -> RunResults | None:
    """Writes the results file (and the nightly digest); returns the nightly run it is compared with."""
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
    return previous


def _trend(session: pytest.Session, state: ReportState, scope: str) -> str:
    """The nightly trend (as a data: URI for the HTML pages), after which old history is pruned."""
    if state.kind != "nightly":
        return ""
    state.trend_png = trend.png([made for _, made in history.nightly_digests(state.reports, scope)[-30:]])
    trend_html = (
        trend.img("data:image/png;base64," + base64.b64encode(state.trend_png).decode("ascii")) if state.trend_png else ""
    )
    keep = session.config.getoption("--history-keep")
    keep = keep if keep is not None else session.config.stash[INVENTORY_KEY].report.get("history_keep", history.DEFAULT_KEEP)
    history.prune(state.reports, int(keep))
    return trend_html


def finish(session: pytest.Session) -> ReportState | None:
    """Write the results file and the summary once; returns the state (None outside a check run)."""
    config = session.config
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.summary_html is not None or config.getoption("collectonly"):
        return None if state is None or config.getoption("collectonly") else state
    scope, dags = _scope(config)
    results = _results(session, state, scope, dags)
    previous = _write_results(state, results, scope)
    trend_html = _trend(session, state, scope)
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


# ---- the mail ---------------------------------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # Here the inventory is loaded: a mail set-up that cannot work is a usage error before any check.
    config = session.config
    if STATE_KEY not in config.stash:
        return
    try:
        config.stash[MAIL_SETTINGS_KEY] = mail.from_run(
            config.stash[INVENTORY_KEY].report.get("email"),
            config.getoption("--mail-to"),
            config.getoption("--mail-when"),
            config.getoption("--smtp"),
            config.getoption("--mail-from"),
            config.getoption("--smtp-security"),
        )
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(tryfirst=True, specname="pytest_terminal_summary")
def pytest_terminal_summary_mail(terminalreporter: Any, config: pytest.Config) -> None:
    """Sends once every sessionfinish has run, so that pytest-html has written the report it attaches
    (pytest calls the terminal summary after them)."""
    session = terminalreporter._session
    state = session.config.stash.get(STATE_KEY, None)
    settings = session.config.stash.get(MAIL_SETTINGS_KEY, None)
    if state is None or settings is None or state.results is None:
        return
    failing = bool(state.results.failing())
    if not mail.due(settings, failing, state.changed):
        state.mail_outcome = f"not sent (when: {settings.when})"
        return
    line = summary.verdict(state.results)[1]
    html_path = getattr(session.config.option, "htmlpath", None)
    # The body is the summary with the trend as a related part (cid:), never a data: URI.
    body = summary.render(
        state.results, state.previous, trend.img(f"cid:{trend.CID}") if state.trend_png else "", standalone=True
    )
    message = mail.build(
        settings,
        f"dagcheck: {line}",
        body,
        Path(html_path) if html_path else None,
        summary.text(state.results, state.previous),
        {trend.CID: state.trend_png} if state.trend_png else None,
    )
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
    if session.exitstatus == 0:
        session.exitstatus = mail.EXIT_MAIL_FAILED
    verdict = session.config.stash.get(VERDICT_KEY, None)
    if verdict is not None:
        verdict.mail_failure = outcome
        if verdict.exit_code == 0:
            verdict.exit_code = mail.EXIT_MAIL_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.summary_html is None:
        return
    for name, path in (("results", state.results_path), ("summary", state.summary_path)):
        if path is not None:
            terminalreporter.write_line(f"dagcheck {name}: {path}")
    for line in state.results.run.get("history_skipped", []) if state.results is not None else []:
        terminalreporter.write_line(f"dagcheck history: skipped a damaged file: {line}", yellow=True)
    if state.mail_outcome:
        terminalreporter.write_line(f"dagcheck email: {state.mail_outcome}", red=state.mail_outcome.startswith("FAILED"))
    if state.waivers is not None:
        for w in state.waivers.review()["expired"]:
            terminalreporter.write_line(f"dagcheck waiver EXPIRED (the check counts again): {w}", yellow=True)
        for w in state.waivers.review()["unmatched"]:
            terminalreporter.write_line(f"dagcheck waiver matches nothing: {w}", yellow=True)


# ---- the pytest-html report ---------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    # Outside dagcheck.plugin.outcomes' wrapper (registered after it), which has given the report its properties.
    outcome = yield
    report = outcome.get_result()
    props = getattr(report, "dagcheck", None)
    pytest_html = item.config.pluginmanager.getplugin("html")
    spec = spec_of(getattr(item, "function", None))
    if props is None or spec is None or pytest_html is None or not report.failed:
        return
    # Only a verdict that is not a pass has a row of its own in the HTML report (dagcheck.report.detail);
    # a pass's commands are in the results file.
    target = item.callspec.params.get("target") if hasattr(item, "callspec") else None
    session = item.config.stash.get(SESSION_KEY, None)
    commands = []
    if session is not None and target is not None:
        commands = commands_behind(session, spec.source, target.server, target.phase)
    extras = getattr(report, "extras", [])
    extras.append(pytest_html.extras.html(_details_html(spec, props, commands, report.failed)))
    report.extras = extras


def _details_html(spec: CheckSpec, props: dict[str, str], commands: list[Any], failed: bool) -> str:
    rows = [
        ("Check", f"{spec.id} — {spec.title}"),
        ("Severity", spec.severity),
        ("Server", props["server"]),
        ("Object", props["object"]),
        ("Why it matters", spec.rationale),
    ]
    if failed:
        rows += [("Expected", props["expected"]), ("Actual", props["actual"]), ("Remediation", props["remediation"])]
    table = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in rows
        if v
    )
    transcript = "".join(
        f"<li><code>[{html.escape(i.server)}/{i.endpoint.value}] {html.escape(i.command.render())}</code> — "
        f"{i.outcome}, {i.objects} object(s), {i.duration * 1000:.0f} ms"
        f"{(': ' + html.escape(i.message)) if i.message else ''}</li>"
        for i in commands
    )
    return f"<div class='dagcheck'><table>{table}</table><p>Commands behind this verdict:</p><ul>{transcript}</ul></div>"


def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session) -> None:
    config = session.config
    for line in config.stash.get(STALE_KEY, []):
        prefix.append(f"<p style='color:#a60;font-weight:bold'>Stale table: {html.escape(line)}</p>")
    state = finish(session)
    if state is not None and state.summary_html:
        prefix.insert(0, state.summary_html)
    if state is not None and state.results is not None:
        href, where = detail.results_href(state.results_path, getattr(config.option, "htmlpath", None))
        postfix.append(detail.without_javascript(state.not_passed))
        postfix.append(detail.passed_by_check(state.results, href, where))
    unverified = unverified_tls(config)
    if unverified:
        prefix.append(
            f"<p style='color:#b00;font-weight:bold'>TLS certificates were NOT verified for "
            f"{html.escape(', '.join(unverified))} (connection.verify_tls: false).</p>"
        )
    _transitions_html(config, prefix)


def _transitions_html(config: pytest.Config, prefix: list[str]) -> None:
    ctl = config.stash.get(CONTROLLER_KEY, None)
    for result in ctl.results.values() if ctl else ():
        body = html.escape("\n".join(transition_lines(result)))
        prefix.append(f"<h2>Maintenance transition: {html.escape(result.direction)}</h2><pre>{body}</pre>")
    dc = config.stash.get(SESSION_KEY, None)
    if dc is not None and ctl is not None and ctl.results:
        changes = [
            i
            for i in dc.transcript.invocations
            if not i.command.cmdlet.startswith(("Get-", "Test-")) and i.endpoint.value != "winrs"
        ]
        rows = "".join(
            f"<li><code>[{html.escape(i.server)}/{i.endpoint.value}] {html.escape(i.command.render())}</code> "
            f"— {i.outcome}, {i.duration * 1000:.0f} ms</li>"
            for i in changes
        )
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
    report.title = TITLE


class _RunReport:
    """The pytest-html hooks that need the run's config, which pytest-html does not pass them: one object per
    check run, holding only its config; what they share is config.stash[HTML_TABLE_KEY].

    pytest-html 4 counts only the rows it keeps (pytest-html issue #794), so a report without pass rows
    would say "0 Passed". Its report data (the object of pytest_html_report_title) keeps the counts; a
    left-out pass is counted there, so the filter line and "N tests took" stay true. Guarded: without
    that attribute (another pytest-html) the counts are pytest-html's own."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    @property
    def _table(self) -> HtmlTable:
        return self._config.stash[HTML_TABLE_KEY]

    @pytest.hookimpl(trylast=True)
    def pytest_html_report_title(self, report: Any) -> None:
        self._table.data, self._table.left_out = report, set()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._table.reports = None
        for plugin in session.config.pluginmanager.get_plugins():
            held = getattr(plugin, "_reports", None)  # pytest-html 4's per-test reports (BaseReport._reports)
            if type(plugin).__module__.startswith("pytest_html") and isinstance(held, dict):
                self._table.reports = held

    @pytest.hookimpl(trylast=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        # trylast: after the module's hook has added its cells. Emptying the cells is pytest-html's documented
        # way to leave a result out of the table; a passing check is in the section above instead (one
        # row per check) and in the results file.
        table = self._table
        if report.when == "teardown" and report.passed and report.nodeid in table.left_out:
            # Else pytest-html files the teardown under the test's id, and the page carries an empty entry per pass.
            table.left_out.discard(report.nodeid)
            del cells[:]
        elif report.when == "call" and report.passed and getattr(report, "dagcheck", None) is not None:
            del cells[:]
            table.left_out.add(report.nodeid)
            if isinstance(getattr(table.data, "outcomes", None), dict):
                try:
                    table.data.outcomes = "passed"  # pytest-html's setter adds one
                except (AttributeError, KeyError, TypeError):
                    pass

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport):  # type: ignore[no-untyped-def]
        yield
        table = self._table
        if report.when == "teardown" and table.reports is not None:
            # pytest-html has made the test's row (at its teardown report) and never reads its reports again, but
            # keeps them by node id to the end: at fleet scale the whole run twice over. Guarded like the counter.
            table.reports.pop(report.nodeid, None)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """pytest-html's report and the JUnit XML are written by their own plugins (at sessionfinish, with the
    umask's mode): made owner-only here, after them, like every file dagcheck keeps (dagcheck.files)."""
    if config.stash.get(STATE_KEY, None) is None:
        return
    for option in ("htmlpath", "xmlpath"):
        restrict(getattr(config.option, option, None))
