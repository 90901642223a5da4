"""Reports an operator can trust without help (issue 26): dagcheck.html readable with scripts off, a history
that follows the organisation rather than the inventory file's path, and a member in planned maintenance
that the summary, the mail's text, the verdict and the console all name as not checked, with why."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from dagcheck.report import summary
from dagcheck.report.results import read
from tests.conftest import lab_data

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FAULTS = [{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}, {"kind": "stuck_queue", "server": "mbx3", "count": 25}]


class _Text(HTMLParser):
    """The text a reader sees with scripts off: no <script> or <style>, no attribute (pytest-html keeps its
    results as JSON in an attribute, which no reader sees)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001
        self._hidden += tag in ("script", "style", "template")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("script", "style", "template")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _visible_text(page: str) -> str:
    parser = _Text()
    parser.feed(re.sub(r"<script\b.*?</script>", "", page, flags=re.S | re.I))
    return " ".join(parser.parts)


def _results(reports: Path):
    [path] = sorted((reports / "history" / "nightly").glob("*.json"))[-1:]
    return read(path)


def test_without_scripts_dagcheck_html_shows_every_row_that_is_not_a_pass(run_checks, tmp_path) -> None:
    result = run_checks(lab_data(FAULTS))
    failed = result.failed()
    assert len(failed) >= 2
    page = (tmp_path / "reports" / "dagcheck.html").read_text(encoding="utf-8")
    text = _visible_text(page)
    for nodeid in failed:  # each row of pytest-html's results table, by its test id
        assert nodeid in text, nodeid
    for check in _results(tmp_path / "reports").failing():
        assert check.id in text and check.remediation.split(" ")[0] in text


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium)")
def test_chromium_with_scripts_blocked_shows_failing_rows_and_a_summary_in_full_colour(run_checks, tmp_path) -> None:
    """Scripts blocked by a Content-Security-Policy, as a locked-down browser or a mail client does
    (this Chromium ignores --disable-javascript, and with --blink-settings=scriptEnabled=false it dumps nothing)."""
    result = run_checks(lab_data(FAULTS))
    report = tmp_path / "reports" / "dagcheck.html"
    blocked = tmp_path / "blocked.html"
    blocked.write_text(
        report.read_text(encoding="utf-8").replace(
            "<head>", "<head><meta http-equiv='Content-Security-Policy' content=\"script-src 'none'\">", 1
        ),
        encoding="utf-8",
    )
    dom = _dump(blocked, tmp_path)
    assert '<td class="col-testId">' not in dom  # pytest-html built no row of its own: the scripts were blocked
    table = dom.split("Passed checks, one row per check", 1)[0].split("Resolved since the last run", 1)[1]
    text = _visible_text(table)
    for nodeid in result.failed():
        assert nodeid in text, nodeid
    # pytest-html's style sheet greys the body's text (color:#999); the summary carries its own colour.
    probe = tmp_path / "probe.html"
    probe.write_text(
        report.read_text(encoding="utf-8").replace(
            "</body>",
            "<script>document.title = getComputedStyle(document.querySelector('.additional-summary.prefix "
            "td')).color;</script></body>",
        ),
        encoding="utf-8",
    )
    colour = re.search(r"<title[^>]*>([^<]*)</title>", _dump(probe, tmp_path)).group(1)
    assert colour == "rgb(34, 34, 34)", colour


def _dump(page: Path, tmp_path: Path) -> str:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout


def test_a_copied_inventory_keeps_its_history(run_checks, tmp_path) -> None:
    """The same organisation, its inventory moved: the second run still compares with the first."""
    data = lab_data(FAULTS[:1])
    run_checks(data)
    moved = tmp_path / "elsewhere" / "prod.yml"
    moved.parent.mkdir()
    moved.write_text(yaml.safe_dump(lab_data(FAULTS)), encoding="utf-8")
    run_checks(lab_data(FAULTS), "--inventory", str(moved))  # the last --inventory wins
    page = (tmp_path / "reports" / "summary.html").read_text(encoding="utf-8")
    assert "New since the last run (previous run " in page, page[:3000]
    new = page.split("New since the last run", 1)[1].split("Resolved since the last run", 1)[0]
    assert "DAG-QUEUE-001" in new and "DAG-COPY-001" not in new
    assert "inventory " + str(moved) in page


def test_a_changed_organisation_says_why_it_has_nothing_to_compare_with(tmp_path) -> None:
    from dagcheck.report import history
    from dagcheck.report.results import RunResults, write

    reports = tmp_path / "reports"
    assert history.why_none(reports, history.scope_of(["mbx1"])) == "no previous nightly run to compare with"
    earlier = RunResults(
        {"started": "2026-12-06T01:00:00+00:00", "kind": "nightly", "scope": history.scope_of(["mbx1", "MBX2", "mbx3"])},
        {"dags": {}},
        [],
    )
    write(earlier, history.folder(reports, "nightly") / "20261206T010000000000Z.json")
    scope = history.scope_of(["mbx1", "mbx2", "mbx4"])
    assert history.previous(reports, scope) is None
    why = history.why_none(reports, scope)
    assert why == (
        "nothing to compare with: the last nightly run (2026-12-06T01:00:00+00:00) checked other servers "
        "(added mbx4; removed mbx3), so this run starts a new history"
    )
    now = RunResults(
        {"started": "2026-12-07T01:00:00+00:00", "kind": "nightly", "scope": scope, "no_previous": why}, {"dags": {}}, []
    )
    assert f"New since the last run ({why})" in summary.render(now, None)
    assert why in summary.text(now, None)
    # A results file written before the scope was the servers (inventory path|servers) still compares.
    assert history.same_scope("/old/path/inv.yml|mbx2,mbx1", history.scope_of(["mbx1", "mbx2"]))


def _stamp(hours: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat(timespec="seconds")


def test_planned_maintenance_is_named_in_the_cell_the_summary_the_text_and_the_last_line(run_checks, tmp_path, capsys) -> None:
    data = lab_data([{"kind": "in_maintenance", "server": "mbx2"}])
    until = _stamp(2)
    data["maintenance_windows"] = [{"server": "mbx2", "start": _stamp(-1), "end": until, "reason": "CU15 install", "by": "jdoe"}]
    result = run_checks(data)
    assert result.exit_code == 0
    said = f"planned maintenance: CU15 install, by jdoe, until {dt.datetime.fromisoformat(until).isoformat()}"
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("dagcheck exit 0:") and "every server checked" not in last, last
    assert f"1 server(s) not checked: mbx2 ({said})" in last, last
    results = _results(tmp_path / "reports")
    state, line = summary.verdict(results)
    assert state == "pass" and "1 server(s) not checked: mbx2 (planned maintenance)" in line
    page = (tmp_path / "reports" / "summary.html").read_text(encoding="utf-8")
    row = page.split("<th style='border:1px solid #999;padding:3px 6px;text-align:left'>mbx2</th>", 1)[1].split("</tr>", 1)[0]
    assert row.count(said) >= 6, row  # the server's cells: not checked, and why
    assert f"Not checked: mbx2 — {said}" in page
    assert f"Not checked: mbx2 — {said}" in summary.text(results, None)
    assert json.loads(json.dumps(results.run["maintenance"]))[0]["by"] == "jdoe"


def test_the_unverified_tls_warning_is_in_the_summary_that_is_mailed(monkeypatch) -> None:
    """The terminal and pytest-html named it; the summary file and the mail (text and HTML) did not."""
    from dagcheck.plugin import notices as plugin_notices
    from dagcheck.report.results import RunResults

    monkeypatch.setattr(plugin_notices, "unverified_tls", lambda config: ["mbx1", "mbx2"])

    class _Config:
        stash: dict = {}

    notices = plugin_notices.run_notices(_Config())  # type: ignore[arg-type]
    said = "TLS certificates were NOT verified for mbx1, mbx2 (connection.verify_tls: false"
    assert any(said in n for n in notices), notices
    results = RunResults(
        {"started": "2026-12-07T01:00:00+00:00", "kind": "nightly", "notices": notices}, {"dags": {"DAG1": ["mbx1", "mbx2"]}}, []
    )
    assert said in summary.render(results, None, standalone=True)
    assert said in summary.text(results, None).splitlines()[2]
