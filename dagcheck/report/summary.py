"""The verdict-first summary: static HTML with inline styles only, so that it reads the same with
JavaScript off, in a mail client's body and at the top of the pytest-html report; and its plain-text
twin for the mail's text part, which leads with the verdict and the failures.

On a phone's width every table scrolls within its own box (inline `overflow-x:auto`, which is all a
mail client keeps) and long words wrap, so the page itself never scrolls sideways."""

from __future__ import annotations

import html
from collections import defaultdict

from dagcheck.report.results import AREA_ORDER, CheckResult, RunResults

COLOURS = {"pass": "#d9f2d9", "warn": "#fff0b3", "fail": "#f4c7c3", "waived": "#dde3f0", "not-checked": "#eeeeee"}
RANK = {"fail": 4, "warn": 3, "waived": 2, "pass": 1, "not-checked": 0}
CELL = "border:1px solid #999;padding:3px 6px;"
TABLE = "<div style='overflow-x:auto;max-width:100%'><table style='border-collapse:collapse;font-size:13px'>"
END_TABLE = "</table></div>"


def _e(text: object) -> str:
    return html.escape(str(text))


def verdict(results: RunResults) -> tuple[str, str]:
    state, line = _verdict(results)
    if results.inventory.get("simulated"):
        # A run on the lab must never pass for a real organisation's verdict, in the report or a mail subject.
        line += " — simulated lab, not a real organisation"
    return state, line


def _verdict(results: RunResults) -> tuple[str, str]:
    fails = [c for c in results.checks if c.outcome == "fail"]
    warns = [c for c in results.checks if c.outcome == "warn"]
    waived = [c for c in results.checks if c.outcome == "waived"]
    dags = ", ".join(results.inventory.get("dags", {})) or "the servers"
    extra = f", {len(waived)} waived" if waived else ""
    planned = [m["server"] for m in planned_maintenance(results)]
    if planned:
        extra += f"; {len(planned)} server(s) not checked: {', '.join(planned)} (planned maintenance)"
    if fails:
        return "fail", (
            f"NOT HEALTHY: {dags} — {len({c.id for c in fails})} critical check(s) failed on "
            f"{len(fails)} object(s), {len(warns)} warning(s){extra}"
        )
    if warns:
        return "warn", f"HEALTHY WITH WARNINGS: {dags} — {len(warns)} warning(s), no critical failure{extra}"
    return "pass", f"HEALTHY: {dags} — {len(results.checks)} check(s) passed or not applicable{extra}"


def planned_maintenance(results: RunResults) -> list[dict[str, str]]:
    """The members whose checks the run skipped for planned maintenance (run.maintenance of the results)."""
    return [m for m in results.run.get("maintenance", []) if m.get("planned")]


def maintenance_text(entry: dict[str, str]) -> str:
    """What the cell, the summary and the mail say of a member in planned maintenance."""
    return f"planned maintenance: {entry.get('reason', '')}, by {entry.get('by', '')}, until {entry.get('until', '')}"


def _matrix(results: RunResults, dag: str, servers: list[str]) -> str:
    cells: dict[tuple[str, str], list[CheckResult]] = defaultdict(list)
    for c in results.checks:
        if c.server in servers:
            cells[(c.server, c.area)].append(c)
    head = "".join(f"<th style='{CELL}background:#f5f5f5'>{_e(a)}</th>" for a in AREA_ORDER)
    planned = {m["server"].lower(): maintenance_text(m) for m in planned_maintenance(results)}
    rows = []
    for server in servers:
        tds = []
        for area in AREA_ORDER:
            items = cells.get((server, area), [])
            why = planned.get(server.lower())
            if why and all(c.outcome == "not-checked" for c in items):
                tds.append(f"<td style='{CELL}background:{COLOURS['not-checked']}'><b>not checked</b><br>{_e(why)}</td>")
                continue
            if not items:
                tds.append(f"<td style='{CELL}background:{COLOURS['not-checked']}'>not checked</td>")
                continue
            worst = max((c.outcome for c in items), key=RANK.__getitem__)
            counts: defaultdict[str, int] = defaultdict(int)
            for c in items:
                counts[c.outcome] += 1
            text = " ".join(f"{n} {o}" for o, n in sorted(counts.items(), key=lambda kv: -RANK[kv[0]]))
            tds.append(f"<td style='{CELL}background:{COLOURS[worst]}'><b>{_e(worst)}</b><br>{_e(text)}</td>")
        rows.append(f"<tr><th style='{CELL}text-align:left'>{_e(server)}</th>{''.join(tds)}</tr>")
    return (
        f"<h3 style='margin:8px 0 4px'>DAG {_e(dag)}</h3>{TABLE}"
        f"<tr><th style='{CELL}'>server</th>{head}</tr>{''.join(rows)}{END_TABLE}"
    )


def _grouped(items: list[CheckResult]) -> str:
    by_check: dict[str, list[CheckResult]] = defaultdict(list)
    for c in items:
        by_check[c.id].append(c)
    rows = []
    for cid, group in sorted(by_check.items(), key=lambda kv: (-RANK[kv[1][0].outcome], kv[0])):
        first = group[0]
        where = "; ".join(sorted({f"{c.server}: {c.object}" if c.object != c.server else c.server for c in group}))
        detail = first.actual or first.message
        reason = (
            f"<br><i>waived: {_e(first.waiver.get('reason', ''))} ({_e(first.waiver.get('owner', ''))}, until "
            f"{_e(first.waiver.get('expires', ''))})</i>"
            if first.waiver
            else ""
        )
        rows.append(
            f"<tr style='background:{COLOURS[first.outcome]}'><td style='{CELL}'><b>{_e(cid)}</b></td>"
            f"<td style='{CELL}'>{_e(first.outcome)}</td><td style='{CELL}'>{_e(first.title)}</td>"
            f"<td style='{CELL}'>{len(group)}: {_e(where)}</td><td style='{CELL}'>{_e(detail)}{reason}</td>"
            f"<td style='{CELL}'><code>{_e(first.remediation)}</code></td></tr>"
        )
    if not rows:
        return "<p>none</p>"
    head = "".join(
        f"<th style='{CELL}background:#f5f5f5'>{h}</th>"
        for h in ("check", "outcome", "title", "servers / objects", "actual", "remediation")
    )
    return f"{TABLE}<tr>{head}</tr>{''.join(rows)}{END_TABLE}"


def changes(current: RunResults, previous: RunResults | None) -> tuple[list[CheckResult], list[CheckResult]]:
    """(new, resolved) failures compared with the previous run; both empty without a previous run."""
    if previous is None:
        return [], []
    now = {c.key: c for c in current.failing()}
    before = {c.key: c for c in previous.failing()}
    return [c for k, c in now.items() if k not in before], [c for k, c in before.items() if k not in now]


def render(results: RunResults, previous: RunResults | None, trend_html: str = "", standalone: bool = False) -> str:
    state, line = verdict(results)
    colour = {"fail": "#b00020", "warn": "#8a6d00", "pass": "#1b6e20"}[state]
    parts = [
        f"<div style='font-family:Segoe UI,Arial,sans-serif;font-size:14px;color:#222;overflow-wrap:anywhere'>"
        f"<p style='font-size:20px;font-weight:bold;color:{colour};margin:4px 0'>{_e(line)}</p>",
        f"<p style='margin:2px 0;color:#555'>Run {_e(results.run.get('started', ''))} · {_e(results.run.get('kind', ''))}"
        f" · phase {_e(results.run.get('phase', ''))} · inventory {_e(results.inventory.get('file', ''))}</p>",
    ]
    parts += [f"<p style='margin:2px 0;color:#8a4b00;font-weight:bold'>{_e(n)}</p>" for n in results.run.get("notices", [])]
    parts += [
        f"<p style='margin:2px 0;color:#555;font-weight:bold'>Not checked: {_e(m['server'])} — {_e(maintenance_text(m))}</p>"
        for m in planned_maintenance(results)
    ]
    for dag, servers in results.inventory.get("dags", {}).items():
        parts.append(_matrix(results, dag, servers))
    parts.append("<h3 style='margin:10px 0 4px'>Failures by check</h3>" + _grouped(results.failing()))
    if results.drift:
        parts.append("<h3 style='margin:10px 0 4px'>Configuration drift</h3>" + "".join(_drift(d) for d in results.drift))
    waived = [c for c in results.checks if c.outcome == "waived"]
    if waived:
        parts.append("<h3 style='margin:10px 0 4px'>Waived (accepted, not counted)</h3>" + _grouped(waived))
    new, resolved = changes(results, previous)
    since = f" (previous run {_e(previous.run.get('started', ''))})" if previous else f" ({_e(no_previous(results))})"
    if results.run.get("history_skipped"):  # damaged kept files (dagcheck.report.history): named, not compared
        since += f" (skipped damaged history file(s): {_e('; '.join(results.run['history_skipped']))})"
    parts.append(f"<h3 style='margin:10px 0 4px'>New since the last run{since}</h3>" + _grouped(new))
    parts.append("<h3 style='margin:10px 0 4px'>Resolved since the last run</h3>" + _resolved(resolved))
    waivers = results.waivers
    if waivers.get("expired") or waivers.get("unmatched"):
        items = [f"<li>EXPIRED (counts again): {_waiver(w)}</li>" for w in waivers.get("expired", [])]
        items += [f"<li>matches nothing: {_waiver(w)}</li>" for w in waivers.get("unmatched", [])]
        parts.append(f"<h3 style='margin:10px 0 4px'>Waivers to review</h3><ul>{''.join(items)}</ul>")
    if trend_html:
        parts.append(f"<h3 style='margin:10px 0 4px'>Trend (last 30 nightly runs)</h3>{trend_html}")
    parts.append("</div>")
    body = "".join(parts)
    if not standalone:
        return body
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>dagcheck summary</title></head>"
        f"<body style='margin:12px'>{body}</body></html>"
    )


DRIFT_COLOURS = {"expected": COLOURS["pass"], "unexpected": COLOURS["warn"], "critical": COLOURS["fail"]}


def _drift(d: dict) -> str:
    """One server's settings that differ from its baseline taken before maintenance (dagcheck/drift.py)."""
    head = (
        f"<p style='margin:4px 0'><b>{_e(d['server'])}</b>: {d['compared']} setting(s) compared with the baseline "
        f"taken {_e(d['baseline_taken'])} before entering maintenance; {len(d['differences'])} differ.</p>"
    )
    skipped = "".join(f"<li>not compared: {_e(area)}: {_e(why)}</li>" for area, why in d["not_compared"].items())
    if not d["differences"]:
        return head + (f"<ul>{skipped}</ul>" if skipped else "")
    cols = ("verdict", "area", "setting", "before", "after")
    rows = "".join(
        f"<tr style='background:{DRIFT_COLOURS[x['verdict']]}'><td style='{CELL}'><b>{_e(x['verdict'])}</b></td>"
        f"<td style='{CELL}'>{_e(x['area'])}</td><td style='{CELL}'>{_e(x['item'])} {_e(x['name'])}</td>"
        f"<td style='{CELL}'>{_e(_shown(x['before']))}</td><td style='{CELL}'>{_e(_shown(x['after']))}</td></tr>"
        for x in d["differences"]
    )
    table = f"{TABLE}<tr>" + "".join(f"<th style='{CELL}background:#f5f5f5'>{c}</th>" for c in cols) + f"</tr>{rows}{END_TABLE}"
    return head + table + (f"<ul>{skipped}</ul>" if skipped else "")


def _shown(value: str | None) -> str:
    return "(absent)" if value is None else "(empty)" if value == "" else value


def _resolved(items: list[CheckResult]) -> str:
    if not items:
        return "<p>none</p>"
    return (
        "<ul>"
        + "".join(
            f"<li><b>{_e(c.id)}</b> {_e(c.title)} — {_e(c.server)}: {_e(c.object)}</li>"
            for c in sorted(items, key=lambda c: c.key)
        )
        + "</ul>"
    )


def _waiver(w: dict[str, str]) -> str:
    return _e(f"{w['check']} server {w['server']} object {w['object']}: {w['reason']} ({w['owner']}, until {w['expires']})")


def no_previous(results: RunResults) -> str:
    """Why a run has nothing to compare with (run.no_previous of the results, written by the nightly run)."""
    return results.run.get("no_previous") or "no previous nightly run to compare with"


def text(results: RunResults, previous: RunResults | None) -> str:
    """The mail's text part: the verdict, then every failure with where and what to do, then what changed."""
    lines = [verdict(results)[1]]
    about = [str(n) for n in results.run.get("notices", [])]
    about += [f"Not checked: {m['server']} — {maintenance_text(m)}" for m in planned_maintenance(results)]
    lines += [""] + about if about else []
    failing = sorted(results.failing(), key=lambda c: (-RANK[c.outcome], c.id, c.server, c.object))
    lines += ["", f"Failures ({len(failing)}):" if failing else "Failures: none"]
    for c in failing:
        where = c.server if c.object in ("", c.server) else f"{c.server}: {c.object}"
        lines.append(f"- {c.outcome.upper()} {c.id} {c.title} — {where}")
        actual = c.actual or (c.message.splitlines() or [""])[0]
        lines += [
            f"    {label}: {value}"
            for label, value in (("expected", c.expected), ("actual", actual), ("do", c.remediation))
            if value
        ]
    new, resolved = changes(results, previous)
    if previous is None:
        lines += ["", f"New since the last run: {no_previous(results)}"]
    else:
        lines += ["", f"New since the last run ({previous.run.get('started', '')}): {len(new)}"]
        lines += [f"- {c.id} {c.server}: {c.object}" for c in new]
        lines += [f"Resolved since the last run: {len(resolved)}"] + [f"- {c.id} {c.server}: {c.object}" for c in resolved]
    lines += ["", "The full report is attached (dagcheck.html)."]
    return "\n".join(lines) + "\n"
