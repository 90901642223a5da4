"""Issue 11: the verdict-first summary, the results JSON and its history, ad-hoc runs kept apart, waivers."""

from __future__ import annotations

import datetime as dt
import json
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
        {"check": "DAG-COPY-001", "server": "MBX*", "object": "DB0?\\*", "reason": "reseed planned", "owner": "ops",
         "expires": future},
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
