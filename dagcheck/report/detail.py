"""The per-check detail report (pytest-html's reports/dagcheck.html) at fleet scale (issue 14).

Why: at 300 servers a run has some 56,000 verdicts. One pytest-html row each, every row carrying its
check's explanation and the commands behind it, made a 140 MB page that took two minutes to open.
People read the failures each morning; a pass needs no row of its own. So the results table keeps a
row, with its full detail, for every verdict that is not a pass (failed, warning, waived, not
checked), and the passes are one row per check here, naming their servers. Every passing object, with
the commands behind its verdict, stays in the results file (reports/history/*/*.json, checks[]),
which this section names and links.
"""

from __future__ import annotations

import html
import os
import re
from collections import defaultdict
from pathlib import Path

from dagcheck.report.results import CheckResult, RunResults
from dagcheck.report.summary import CELL, COLOURS

MAX_COMMANDS = 6  # per check: the command lines behind it, with the server's name as <server>


def _e(text: object) -> str:
    return html.escape(str(text))


def results_href(results_path: Path | None, report_path: str | os.PathLike[str] | None) -> tuple[str, str]:
    """(href, text) naming the results file from the HTML report: relative when both sit under one
    reports folder (the pair can be moved together), else absolute."""
    if results_path is None:
        return "", "(the results file could not be written; see the run's output)"
    target = Path(results_path).resolve()
    if report_path:
        try:
            rel = Path(os.path.relpath(target, Path(report_path).resolve().parent))
        except ValueError:  # another drive (Windows)
            rel = target
        if not str(rel).startswith(".."):
            return rel.as_posix(), str(target)
    return target.as_uri(), str(target)


def _templated(command: str, server: str) -> str:
    """A server's command line with its own name as <server>, so one line stands for every server."""
    return re.sub(rf"(?<![\w.-]){re.escape(server)}(?![\w-])", "<server>", command, flags=re.IGNORECASE)


def passed_by_check(results: RunResults, href: str, where: str) -> str:
    """The section that stands for every passing verdict: one row per check and phase."""
    groups: dict[tuple[str, str], list[CheckResult]] = defaultdict(list)
    others = 0
    for c in results.checks:
        if c.outcome == "pass":
            groups[(c.id, c.phase)].append(c)
        else:
            others += 1
    passes = sum(len(g) for g in groups.values())
    phases = {phase for _, phase in groups}
    link = f"<a href='{_e(href)}'>{_e(where)}</a>" if href else _e(where)
    intro = (
        f"<h2 style='margin:12px 0 4px'>Passed checks, one row per check</h2>"
        f"<p style='margin:2px 0'>{passes} passing verdict(s) of {len(groups)} check(s) are grouped here, not rows "
        f"of the results table below. That table holds the other {others} verdict(s) (failed, warning, waived, "
        f"not checked), each with its expected and actual values, remediation and the commands behind it. "
        f"(pytest-html's Passed box above therefore filters nothing.)</p>"
        f"<p style='margin:2px 0'>Every passing object, with the commands behind its verdict: the results file "
        f'{link} (<code>checks[]</code> with <code>"outcome": "pass"</code>).</p>'
    )
    if not groups:
        return intro + "<p>none</p>"
    rows = []
    for (cid, phase), group in sorted(groups.items()):
        first = group[0]
        servers = sorted({c.server for c in group if c.server}, key=str.lower)
        commands = sorted({_templated(cmd, c.server) if c.server else cmd for c in group for cmd in c.commands})
        shown = "".join(f"<li><code>{_e(cmd)}</code></li>" for cmd in commands[:MAX_COMMANDS])
        more = f"<li>and {len(commands) - MAX_COMMANDS} more (results file)</li>" if len(commands) > MAX_COMMANDS else ""
        # <details> opens without JavaScript and costs the browser no layout while closed.
        listing = (
            f"<details><summary>{len(group)} object(s) on {len(servers)} server(s)</summary>{_e(', '.join(servers))}</details>"
        )
        phase_cell = f"<td style='{CELL}'>{_e(phase)}</td>" if len(phases) > 1 else ""
        rows.append(
            f"<tr style='background:{COLOURS['pass']}'><td style='{CELL}'><b>{_e(cid)}</b></td>{phase_cell}"
            f"<td style='{CELL}'>{_e(first.title)}</td><td style='{CELL}'>{_e(first.severity)}</td>"
            f"<td style='{CELL}'>{listing}</td><td style='{CELL}'><ul style='margin:0;padding-left:1.2em'>"
            f"{shown}{more}</ul></td></tr>"
        )
    heads = ("check", *(("phase",) if len(phases) > 1 else ()), "title", "severity", "passed on", "commands behind it")
    head = "".join(f"<th style='{CELL}background:#f5f5f5'>{h}</th>" for h in heads)
    return (
        f"{intro}<table class='dagcheck-passed' style='border-collapse:collapse;font-size:13px'>"
        f"<tr>{head}</tr>{''.join(rows)}</table>"
    )


def without_javascript(rows: list[tuple[str, CheckResult]]) -> str:
    """Every row of the results table that is not a pass, as static HTML that a script hides.

    pytest-html 4 builds its results table in JavaScript from a JSON blob, so with scripts off (a mail
    client's preview of the attached report, a locked-down browser) that table is empty. A browser with
    JavaScript shows pytest-html's table instead of this one (the script right after it hides it); the
    content is the same: the test id, the check, its verdict, where, expected and actual, the remediation
    and the message. Not <noscript>: a browser that parses the page with scripting on never shows it,
    though a policy or an extension then blocks every script (a Content-Security-Policy, a mail client)."""
    if not rows:
        return ""
    cols = ("test", "check", "result", "severity", "server / object", "expected", "actual", "remediation", "message")
    head = "".join(f"<th style='{CELL}background:#f5f5f5'>{c}</th>" for c in cols)
    body = "".join(
        f"<tr style='background:{COLOURS.get(c.outcome, '#fff')}'><td style='{CELL}'>{_e(nodeid)}</td>"
        f"<td style='{CELL}'><b>{_e(c.id)}</b> {_e(c.title)}</td><td style='{CELL}'>{_e(c.outcome)}</td>"
        f"<td style='{CELL}'>{_e(c.severity)}</td><td style='{CELL}'>{_e(c.server)}: {_e(c.object)}</td>"
        f"<td style='{CELL}'>{_e(c.expected)}</td><td style='{CELL}'>{_e(c.actual)}</td>"
        f"<td style='{CELL}'><code>{_e(c.remediation)}</code></td><td style='{CELL}'>{_e(c.message)}</td></tr>"
        for nodeid, c in rows
    )
    return (
        f"<div id='{STATIC_TABLE}' style='color:#222;overflow-wrap:anywhere'><h3 style='margin:10px 0 4px'>"
        f"Results: every verdict that is not a pass ({len(rows)})</h3><p>JavaScript is off, so pytest-html's "
        "results table below stays empty; these are its rows.</p><div style='overflow-x:auto;max-width:100%'>"
        f"<table style='border-collapse:collapse;font-size:12px'><tr>{head}</tr>{body}</table></div></div>"
        f"<script>document.getElementById('{STATIC_TABLE}').style.display = 'none';</script>"
    )


STATIC_TABLE = "dagcheck-results-without-javascript"
