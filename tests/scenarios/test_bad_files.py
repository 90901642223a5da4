"""Issue 24 (items 3, 6, 9): one bad file costs only itself, bad dates are refused at load, and what dagcheck
keeps is owner-only. Whole nightly runs against the healthy lab, in this process."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from dagcheck.report import history
from tests.conftest import lab_data


def _damaged_history(reports: Path) -> list[Path]:
    """The three damaged files of issue 24: a JSON string, a results file and its digest nested 200,000 deep,
    a directory named like a results file."""
    nightly = history.folder(reports, "nightly")
    history.digest_path(nightly / "x.json").parent.mkdir(parents=True)
    string = nightly / "20261202T010000Z.json"
    string.write_text('"a JSON string"', encoding="utf-8")
    deep = nightly / "20261203T010000Z.json"
    deep.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    history.digest_path(deep).write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    folder = nightly / "20261204T010000Z.json"
    folder.mkdir()
    return [string, deep, folder]


def test_damaged_history_files_do_not_stop_the_nightly_report(run_checks, tmp_path, capsys) -> None:
    reports = tmp_path / "reports"
    damaged = _damaged_history(reports)
    result = run_checks(lab_data([]))
    out = capsys.readouterr().out
    assert result.exit_code == 0, out[-3000:]
    summary = (reports / "summary.html").read_text(encoding="utf-8")
    comparison = summary.split("New since the last run", 1)[1].split("</h3>", 1)[0]
    for path in damaged:
        assert path.name in comparison
        assert f"skipped a damaged file: {path}" in out
    assert not [p for p in reports.rglob("*") if p.name.endswith(".tmp")]
    kept = sorted(p.name for p in history.folder(reports, "nightly").glob("*.json") if p.is_file())
    assert len(kept) == 3  # this run's results beside the two damaged files, which are left for their owner


@pytest.mark.parametrize("expires", ["tomorrow", "2026-02-30", 20261231])
def test_an_invalid_waiver_date_is_a_usage_error_before_any_connection(run_checks, tmp_path, capsys, expires) -> None:
    data = lab_data([{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}])
    data["waivers"] = [{"check": "DAG-COPY-001", "reason": "reseed", "owner": "ops", "expires": expires}]
    result = run_checks(data)
    err = capsys.readouterr().err
    assert result.exit_code == 4
    assert result.calls == [] and result.outcomes == {}  # refused before any server was contacted
    assert f"{tmp_path / 'inventory.yml'}: waivers[0].expires" in err and repr(expires) in err


def test_an_invalid_window_date_names_the_field(run_checks, tmp_path, capsys) -> None:
    data = lab_data([])
    data["maintenance_windows"] = [
        {"server": "mbx1", "start": "tomorrow", "end": "2026-12-31T00:00:00Z", "reason": "CU", "by": "ops"}
    ]
    result = run_checks(data)
    err = capsys.readouterr().err
    assert result.exit_code == 4 and result.calls == []
    assert "maintenance_windows[0].start" in err and "'tomorrow'" in err


def _modes(root: Path) -> dict[str, str]:
    """Every file and directory under root (root included, as "."), with its permission bits."""
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in [root, *sorted(root.rglob("*"))]}


def _wider_than_owner(root: Path) -> dict[str, str]:
    return {name: mode for name, mode in _modes(root).items() if mode != ("0o700" if (root / name).is_dir() else "0o600")}


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_what_a_nightly_run_keeps_is_owner_only_under_umask_022(run_checks, tmp_path, umask_022) -> None:
    run_checks(lab_data([]))
    reports = tmp_path / "reports"
    names = set(_modes(reports))
    assert "summary.html" in names and "dagcheck.html" in names and "junit.xml" in names
    assert any(name.startswith("history/nightly/digests/") for name in names)
    assert _wider_than_owner(reports) == {}


def test_a_saved_folder_is_owner_only_under_umask_022(run_checks, tmp_path, umask_022) -> None:
    saved = tmp_path / "saved"
    run_checks(lab_data([]), "--save", str(saved), "-k", "component or extended_protection")
    assert (saved / "manifest.json").is_file() and (saved / "mbx1" / "winrs.json").is_file()
    assert _wider_than_owner(saved) == {}


def test_journals_and_locks_are_owner_only_under_umask_022(tmp_path, umask_022) -> None:
    from dagcheck.maintenance.journal import Journal
    from dagcheck.maintenance.runlock import RunLock

    journal = Journal.for_server(tmp_path / "reports", "mbx1")
    journal.append(event="enter_started")
    lock = RunLock.beside(journal.path)
    lock.acquire()
    journal.path.with_name("journal-mbx2.jsonl").write_text('{"event": "x"}\n{not json\n', encoding="utf-8")
    damaged = Journal.for_server(tmp_path / "reports", "mbx2")
    assert damaged.set_aside_if_damaged("mbx2") is not None  # the fresh journal it writes is owner-only too
    modes = _modes(tmp_path / "reports")
    assert modes[journal.path.name] == modes[lock.path.name] == modes[damaged.path.name] == "0o600"
    assert modes["."] == "0o700"


DRIFT_CHECKS = ("--phase", "postflight", "--server", "mbx4", "-k", "expected_settings or unexpected_change")


def _drift_outcomes(result) -> dict[str, tuple[str, str]]:
    return {n.split("::", 1)[1]: (o, result.messages.get(n, "")) for n, o in result.outcomes.items()}


def test_a_directory_in_place_of_the_baseline_fails_both_drift_checks(run_checks, tmp_path) -> None:
    baseline = tmp_path / "reports" / "baseline-mbx4.json"
    baseline.mkdir(parents=True)
    outcomes = _drift_outcomes(run_checks(lab_data([]), *DRIFT_CHECKS))
    assert len(outcomes) == 2 and all(o == "failed" and str(baseline) in m for o, m in outcomes.values()), outcomes


def test_a_baseline_of_another_server_fails_both_drift_checks(run_checks, tmp_path) -> None:
    from dagcheck import drift

    reports = tmp_path / "reports"
    drift.save(drift.Baseline("mbx3", dt.datetime(2026, 12, 4, tzinfo=dt.UTC), []), reports)
    drift.path_for(reports, "mbx3").rename(drift.path_for(reports, "mbx4"))
    outcomes = _drift_outcomes(run_checks(lab_data([]), *DRIFT_CHECKS))
    assert len(outcomes) == 2 and all(o == "failed" and "a baseline of mbx3, not of mbx4" in m for o, m in outcomes.values()), (
        outcomes
    )
