"""The nightly history at fleet scale: later runs read each kept run's digest (its failing verdicts), not
its whole results file (33 MB at 300 servers; 90 are kept by default, 30 feed the trend)."""

from __future__ import annotations

import json
from pathlib import Path

from dagcheck.report import history, summary
from dagcheck.report.results import CheckResult, RunResults, write

SCOPE = "/inv.yml|mbx1,mbx2"


def _run(started: str, failing: list[str], passes: int = 500) -> RunResults:
    checks = [
        CheckResult(
            id="DAG-COPY-001",
            title="t",
            severity="critical",
            area="copies",
            server="mbx1",
            object=f"DB{i:03d}",
            phase="health",
            outcome="pass",
            commands=["Get-X -Server mbx1"],
        )
        for i in range(passes)
    ]
    checks += [
        CheckResult(
            id="DAG-COPY-001",
            title="t",
            severity="critical",
            area="copies",
            server="mbx2",
            object=obj,
            phase="health",
            outcome="fail",
            expected="Healthy",
            actual="Failed",
        )
        for obj in failing
    ]
    return RunResults({"started": started, "kind": "nightly", "scope": SCOPE}, {"dags": {"DAG1": ["mbx1", "mbx2"]}}, checks)


def _keep(reports: Path, results: RunResults, stamp: str) -> Path:
    path = history.folder(reports, "nightly") / f"{stamp}.json"
    write(results, path)
    history.write_digest(results, path)
    return path


def test_a_digest_holds_the_failing_verdicts_only(tmp_path: Path) -> None:
    path = _keep(tmp_path, _run("2026-12-01T01:00:00", ["DB01\\mbx2"]), "20261201T010000Z")
    digest = json.loads(history.digest_path(path).read_text(encoding="utf-8"))
    assert [c["object"] for c in digest["checks"]] == ["DB01\\mbx2"]
    assert digest["run"]["scope"] == SCOPE and digest["inventory"]["dags"] == {"DAG1": ["mbx1", "mbx2"]}
    assert history.digest_path(path).stat().st_size * 20 < path.stat().st_size


def test_the_previous_run_and_the_trend_read_digests_not_results_files(tmp_path: Path) -> None:
    first = _keep(tmp_path, _run("2026-12-01T01:00:00", ["DB01\\mbx2", "DB02\\mbx2"]), "20261201T010000Z")
    second = _keep(tmp_path, _run("2026-12-02T01:00:00", ["DB02\\mbx2"]), "20261202T010000Z")
    for path in (first, second):  # were a results file read whole, these would break the comparison
        path.write_text("{not json", encoding="utf-8")
    assert [path for path, _ in history.nightly_digests(tmp_path, SCOPE)] == [first, second]
    previous = history.previous(tmp_path, SCOPE)
    assert previous is not None and previous.run["started"] == "2026-12-02T01:00:00"
    new, resolved = summary.changes(_run("2026-12-03T01:00:00", ["DB03\\mbx2"]), previous)
    assert [c.object for c in new] == ["DB03\\mbx2"] and [c.object for c in resolved] == ["DB02\\mbx2"]


def test_a_results_file_kept_from_before_digests_is_read_once_and_given_one(tmp_path: Path) -> None:
    path = history.folder(tmp_path, "nightly") / "20261130T010000Z.json"
    write(_run("2026-11-30T01:00:00", ["DB09\\mbx2"]), path)  # no digest, as an older dagcheck wrote it
    assert [c.object for c in history.digest(path).checks] == ["DB09\\mbx2"]
    assert history.digest_path(path).exists()
    path.write_text("{not json", encoding="utf-8")
    assert [c.object for c in history.digest(path).checks] == ["DB09\\mbx2"]  # from the digest now


def test_pruning_removes_a_run_with_its_digest(tmp_path: Path) -> None:
    paths = [_keep(tmp_path, _run(f"2026-12-0{d}T01:00:00", []), f"2026120{d}T010000Z") for d in (1, 2, 3)]
    assert history.prune(tmp_path, 2) == [paths[0]]
    assert not paths[0].exists() and not history.digest_path(paths[0]).exists()
    assert all(p.exists() and history.digest_path(p).exists() for p in paths[1:])


# ---- issue 24 item 3: one damaged kept file costs only itself ---------------------------------------


def _damage(reports: Path) -> dict[str, Path]:
    """The three damaged files of issue 24, beside one good run: a JSON string, a digest (and its results
    file) nested 200,000 deep, a directory named like a results file."""
    nightly = history.folder(reports, "nightly")
    string = nightly / "20261202T010000Z.json"
    string.write_text('"a JSON string, not a run"', encoding="utf-8")
    deep = nightly / "20261203T010000Z.json"
    deep.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    history.digest_path(deep).parent.mkdir(parents=True, exist_ok=True)
    history.digest_path(deep).write_text('{"a":' * 200_000 + "1" + "}" * 200_000, encoding="utf-8")
    folder = nightly / "20261204T010000Z.json"
    folder.mkdir()
    return {"string": string, "deep": deep, "folder": folder}


def test_damaged_history_files_are_skipped_and_named_not_fatal(tmp_path: Path) -> None:
    good = _keep(tmp_path, _run("2026-12-01T01:00:00", ["DB01\\mbx2"]), "20261201T010000Z")
    bad = _damage(tmp_path)
    damaged: list[str] = []
    previous = history.previous(tmp_path, SCOPE, damaged=damaged)
    assert previous is not None and previous.run["started"] == "2026-12-01T01:00:00"
    assert [p for p, _ in history.nightly_digests(tmp_path, SCOPE)] == [good]
    named = "\n".join(damaged)
    assert len(damaged) == 3 and all(str(p) in named for p in bad.values())
    assert "not an object" in named and "nested too deeply" in named and "a directory" in named
    assert history.prune(tmp_path, 1) == [good, bad["string"], bad["deep"]]  # the directory in the way: no crash


def test_a_damaged_digest_of_a_good_results_file_is_read_from_the_results_file(tmp_path: Path) -> None:
    path = _keep(tmp_path, _run("2026-12-01T01:00:00", ["DB01\\mbx2"]), "20261201T010000Z")
    history.digest_path(path).write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    assert [c.object for c in history.digest(path).checks] == ["DB01\\mbx2"]
    assert json.loads(history.digest_path(path).read_text(encoding="utf-8"))["run"]["scope"] == SCOPE  # repaired


def test_a_500_mb_results_file_is_refused_from_its_size_unread(tmp_path: Path, monkeypatch) -> None:
    huge = history.folder(tmp_path, "nightly") / "20261201T010000Z.json"
    huge.parent.mkdir(parents=True)
    with huge.open("wb") as f:  # sparse: 500 MB on paper, nothing on disk
        f.truncate(500 * 1024 * 1024)
    reads: list[int] = []
    real_open = Path.open

    def counting_open(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        handle = real_open(self, *args, **kwargs)
        if self == huge:
            read = handle.read
            handle.read = lambda n=-1: (reads.append(n), read(n))[1]  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(Path, "open", counting_open)
    damaged: list[str] = []
    assert history.previous(tmp_path, SCOPE, damaged=damaged) is None
    assert reads == []  # refused from its size: not one byte read
    assert len(damaged) == 1 and str(huge) in damaged[0] and "over the limit" in damaged[0]


def test_a_failed_results_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    nightly = history.folder(tmp_path, "nightly")
    target = nightly / "20261201T010000Z.json"
    target.mkdir(parents=True)  # a directory in the way: the replace fails
    try:
        write(_run("2026-12-01T01:00:00", []), target)
    except OSError:
        pass
    else:
        raise AssertionError("writing over a directory should fail")
    assert [p.name for p in nightly.iterdir()] == [target.name]  # no .tmp left behind


def test_the_summary_comparison_line_names_a_skipped_history_file(tmp_path: Path) -> None:
    current = _run("2026-12-03T01:00:00", [])
    current.run["history_skipped"] = ["/r/history/nightly/20261202T010000Z.json: not a results document"]
    text = summary.render(current, None)
    line = text.split("New since the last run", 1)[1].split("</h3>", 1)[0]
    assert "20261202T010000Z.json" in line and "skipped damaged history" in line
