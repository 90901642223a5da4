"""Issue 11: the verdict-first summary, the results JSON and its history, ad-hoc runs kept apart, waivers."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path

import jsonschema

from dagcheck.report.results import SCHEMA_FILE
from tests.conftest import lab_data

COPY_FAILED = {"kind": "copy_failed", "database": "DB01", "server": "mbx2"}
STUCK_QUEUE = {"kind": "stuck_queue", "server": "mbx3", "count": 25}


def _nightly(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "reports" / "history" / "nightly").glob("*.json"))


def test_nightly_summary_names_verdict_matrix_failures_and_what_was_resolved(run_checks, tmp_path) -> None:
    first = run_checks(lab_data([COPY_FAILED, STUCK_QUEUE]))
    assert first.exit_code == 1
    reports = tmp_path / "reports"
    text = (reports / "summary.html").read_text(encoding="utf-8")
    assert "NOT HEALTHY" in text and "DAG DAG1" in text
    assert "DAG-COPY-001" in text and "DB01\\mbx2" in text
    assert "DAG-QUEUE-001" in text and "mbx3" in text
    assert "<script" not in text
    html_report = (reports / "dagcheck.html").read_text(encoding="utf-8")
    assert "NOT HEALTHY" in html_report  # the summary sits at the top of pytest-html's report
    [path] = _nightly(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    failed = {(c["id"], c["server"], c["object"]) for c in data["checks"] if c["outcome"] == "fail"}
    assert ("DAG-COPY-001", "mbx2", "DB01\\mbx2") in failed
    assert any(c["commands"] for c in data["checks"])

    second = run_checks(lab_data([STUCK_QUEUE]))
    assert second.exit_code == 1
    text = (reports / "summary.html").read_text(encoding="utf-8")
    resolved = text.split("Resolved since the last run", 1)[1]
    assert "DAG-COPY-001" in resolved and "DB01\\mbx2" in resolved
    assert "DAG-QUEUE-001" not in resolved
    assert len(_nightly(tmp_path)) == 2
    assert "data:image/png;base64," in text  # the trend, drawn from two nightly runs


def test_adhoc_runs_leave_the_nightly_report_and_history_alone(run_checks, tmp_path) -> None:
    run_checks(lab_data([]))
    reports = tmp_path / "reports"
    before = (reports / "summary.html").read_bytes(), (reports / "dagcheck.html").read_bytes()
    run_checks(lab_data([COPY_FAILED]), "-k", "copy")
    run_checks(lab_data([COPY_FAILED]), "--co")
    run_checks(lab_data([COPY_FAILED]), "--server", "mbx2")
    assert ((reports / "summary.html").read_bytes(), (reports / "dagcheck.html").read_bytes()) == before
    assert len(_nightly(tmp_path)) == 1
    adhoc = sorted((reports / "history" / "adhoc").glob("*.json"))
    assert len(adhoc) == 2  # -k and --server; --co ran nothing and writes nothing
    assert len(list(reports.glob("summary-adhoc-*.html"))) == 2
    assert len(list(reports.glob("adhoc-health-*.html"))) == 2  # pytest-html of -k and --co, stamped


def test_history_keeps_the_configured_number_of_nightly_runs(run_checks, tmp_path) -> None:
    data = lab_data([])
    data["report"] = {"history_keep": 2}
    for _ in range(3):
        run_checks(data)
    assert len(_nightly(tmp_path)) == 2
    run_checks(data, "--history-keep", "1")  # the command line wins over the inventory
    assert len(_nightly(tmp_path)) == 1


def test_waiver_turns_a_failure_into_waived_until_it_expires(run_checks, tmp_path) -> None:
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    data = lab_data([COPY_FAILED])
    data["waivers"] = [
        {
            "check": "DAG-COPY-001",
            "server": "MBX*",
            "object": "DB0?\\*",
            "reason": "reseed planned",
            "owner": "ops",
            "expires": future,
        },
        {"check": "DAG-REPL-001", "server": "mbx2", "reason": "same incident", "owner": "ops", "expires": past},
        {"check": "DAG-EP-001", "server": "nosuch*", "reason": "stale", "owner": "ops", "expires": future},
    ]
    result = run_checks(data)
    # DAG-COPY-001 is waived; DAG-REPL-001's waiver expired, so that check still fails the run.
    assert result.short_failed() == {"test_replication_check_passes[mbx2:DBCopyFailed]"}
    assert result.exit_code == 1
    checks = json.loads(_nightly(tmp_path)[0].read_text(encoding="utf-8"))
    waived = [c for c in checks["checks"] if c["outcome"] == "waived"]
    assert [(c["id"], c["object"]) for c in waived] == [("DAG-COPY-001", "DB01\\mbx2")]
    assert waived[0]["waiver"]["reason"] == "reseed planned"
    assert [w["check"] for w in checks["waivers"]["expired"]] == ["DAG-REPL-001"]
    assert [w["check"] for w in checks["waivers"]["unmatched"]] == ["DAG-EP-001"]
    text = (tmp_path / "reports" / "summary.html").read_text(encoding="utf-8")
    assert "waived: reseed planned" in text and "EXPIRED" in text and "matches nothing" in text

    data["waivers"] = data["waivers"][:1]
    data["waivers"][0]["expires"] = past
    assert run_checks(data).exit_code == 1  # expired: the check counts again


def _html_tests(report: Path) -> dict[str, list[dict]]:
    """pytest-html's results table (node id -> rows), as its page script receives it."""
    blob = re.search(r'data-jsonblob="([^"]*)"', report.read_text(encoding="utf-8"))
    assert blob is not None, "no pytest-html data in the report"
    return json.loads(html.unescape(blob.group(1)))["tests"]


def test_detail_report_keeps_each_failure_whole_and_passes_one_row_per_check(run_checks, tmp_path) -> None:
    run_checks(lab_data([COPY_FAILED]))
    reports = tmp_path / "reports"
    [path] = _nightly(tmp_path)
    checks = json.loads(path.read_text(encoding="utf-8"))["checks"]
    [failed] = [c for c in checks if c["id"] == "DAG-COPY-001" and c["outcome"] == "fail"]
    assert failed["expected"] and failed["actual"] and failed["remediation"]

    tests = _html_tests(reports / "dagcheck.html")
    rows = [row for rows in tests.values() for row in rows]
    outcomes = [re.search(r'class="col-result">(\w+)<', row["resultsTableRow"][0]).group(1) for row in rows]
    assert "Passed" not in outcomes and "Failed" in outcomes
    others = len([c for c in checks if c["outcome"] != "pass"])
    assert len(rows) == len(tests) == others  # a row for every other verdict, and no empty entry for a pass
    [row] = [r for r in rows if "DAG-COPY-001" in "".join(r["resultsTableRow"]) and "Failed" in r["resultsTableRow"][0]]
    detail = html.unescape("".join(e["content"] for e in row["extras"]))
    for label in ("Expected", "Actual", "Remediation", "Commands behind this verdict"):
        assert f">{label}<" in detail or f"{label}:" in detail, label
    for value in (failed["expected"], failed["actual"], failed["remediation"]):
        assert value in detail
    assert "[mbx2/exchange] Get-MailboxDatabaseCopyStatus -Server mbx2" in detail  # the transcript, in the row

    # A pass has no row: its check's row in the grouped section names its server, the results file its commands.
    [passed] = [c for c in checks if c["id"] == "DAG-COPY-001" and c["server"] == "mbx1" and c["outcome"] == "pass"][:1]
    assert "[mbx1/exchange] Get-MailboxDatabaseCopyStatus -Server mbx1" in passed["commands"]
    page = (reports / "dagcheck.html").read_text(encoding="utf-8")
    section = page.split("Passed checks, one row per check", 1)[1].split("</table>", 1)[0]
    copy_row = section.split("<b>DAG-COPY-001</b>", 1)[1].split("</tr>", 1)[0]
    assert "mbx1" in copy_row and "Get-MailboxDatabaseCopyStatus -Server &lt;server&gt;" in copy_row
    href = re.search(r"the results file <a href='([^']+)'>", section).group(1)
    assert (reports / href).resolve() == path.resolve()  # named and linked, relative to the report
    npass = len([c for c in checks if c["outcome"] == "pass"])
    assert f"{npass} Passed" in page  # pytest-html's count still counts the passes it leaves out

    junit = (reports / "junit.xml").read_text(encoding="utf-8")
    case = junit.split(r'name="test_database_copy_is_healthy[DB01\\mbx1]"', 1)[1].split("</testcase>", 1)[0]
    assert 'name="check_id"' in case and 'name="expected"' not in case  # no empty elements for a pass
    case = junit.split(r'name="test_database_copy_is_healthy[DB01\\mbx2]"', 1)[1].split("</testcase>", 1)[0]
    assert 'name="expected"' in case and 'name="remediation"' in case
