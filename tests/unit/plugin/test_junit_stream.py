"""A check run's JUnit XML written as it goes (dagcheck.plugin.junit_stream, issue 27): the same bytes as pytest's
own writer (times aside), nothing held but placeholders, pytest's writer kept where its internals differ, and the
spool never left behind."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _pytest import junitxml

from dagcheck.plugin import junit_stream
from dagcheck.plugin.junit_stream import Spooled, StreamingLogXML
from tests.conftest import lab_data

FAULTS = [{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}, {"kind": "in_maintenance", "server": "mbx1"}]
BLOCKED = ("-p", "no:dagcheck.plugin.junit_stream")  # pytest_plugins loads it; -p no: blocks it
NARROW = ("-k", "test_database_copy_is_healthy")  # DB01's copies: one fails, the ones on mbx1 are skipped


def _normalized(path: Path) -> str:
    """The file's text with only what differs between two runs blanked: times, the suite's timestamp and host."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r' time="[0-9.]+"', ' time=""', text)
    return re.sub(r'(<testsuite [^>]*?) timestamp="[^"]*" hostname="[^"]*"', r'\1 timestamp="" hostname=""', text, count=1)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".spool", ".skeleton")))


class _AtSessionFinish:
    """What the JUnit writer holds when the session finishes, just before it writes."""

    def __init__(self) -> None:
        self.writer: type | None = None
        self.kept: list[type] = []
        self.logfile = ""
        self.spool = ""
        self.spool_left_to_unconfigure = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        xml: Any = session.config.stash[junitxml.xml_key]
        self.writer = type(xml)
        self.kept = [type(entry) for entry in xml.node_reporters_ordered]
        self.logfile = xml.logfile
        self.spool = getattr(xml, "spool_path", "")

    @pytest.hookimpl(wrapper=True)  # before every plain unconfigure, the junit writer's last resort too
    def pytest_unconfigure(self) -> Any:
        self.spool_left_to_unconfigure = bool(self.spool) and Path(self.spool).exists()
        return (yield)


class _CollectionError:
    """A module that failed to import: its testcase is never finalized and is written at the end, in its place."""

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        failed = pytest.CollectReport("checks/test_gone.py", "failed", "ImportError: no module named 'gone'", [])
        session.config.hook.pytest_collectreport(report=failed)


def test_the_streamed_file_is_the_bytes_pytest_writes(run_checks, tmp_path: Path) -> None:
    data, go_on = lab_data(FAULTS), "--continue-on-collection-errors"
    plain, streamed = _AtSessionFinish(), _AtSessionFinish()
    run_checks(data, go_on, *BLOCKED, "--reports-dir", str(tmp_path / "plain"), plugins=(plain, _CollectionError()))
    run_checks(data, go_on, "--reports-dir", str(tmp_path / "streamed"), plugins=(streamed, _CollectionError()))
    assert plain.writer is junitxml.LogXML and streamed.writer is StreamingLogXML
    assert Spooled in streamed.kept and streamed.kept[0] is not Spooled  # the collection error, never finalized
    expected = _normalized(tmp_path / "plain" / "junit.xml")
    assert re.search(r'<testsuite [^>]*errors="1" failures="[1-9]\d*" skipped="[1-9]\d*"', expected)
    assert expected.count("<testcase ") > 1000 and "<property " in expected and 'message="collection failure"' in expected
    assert _normalized(tmp_path / "streamed" / "junit.xml") == expected


def test_finished_testcases_are_kept_only_as_placeholders_and_the_spool_goes(run_checks, tmp_path: Path) -> None:
    seen = _AtSessionFinish()
    run_checks(lab_data(FAULTS), *NARROW, plugins=(seen,))
    assert seen.writer is StreamingLogXML
    assert seen.kept and set(seen.kept) == {Spooled}  # no _NodeReporter and no element for a finished check
    assert Path(seen.spool).parent == Path(seen.logfile).parent and not Path(seen.spool).exists()
    assert not seen.spool_left_to_unconfigure  # removed by the writer, once the report is written
    junit = Path(seen.logfile)
    stem = junit.stem
    assert {p.name for p in (tmp_path / "reports").iterdir()} == {junit.name, f"{stem}.html", f"summary-{stem}.html", "history"}
    assert junit.read_text(encoding="utf-8").count("<testcase ") == len(seen.kept)


@pytest.mark.parametrize(
    "missing",
    [
        pytest.param(lambda mp: mp.setattr(junit_stream, "junitxml", SimpleNamespace(LogXML=junitxml.LogXML)), id="xml_key"),
        pytest.param(lambda mp: mp.setattr(junit_stream, "STATE", (*junit_stream.STATE, "renamed_later")), id="attribute"),
    ],
)
def test_without_the_internals_pytest_writes_the_file_itself(run_checks, tmp_path: Path, monkeypatch, missing) -> None:
    missing(monkeypatch)
    seen = _AtSessionFinish()
    run_checks(lab_data(FAULTS), *NARROW, plugins=(seen,))
    assert seen.writer is junitxml.LogXML
    assert Path(seen.logfile).read_text(encoding="utf-8").count("<testcase ") == len(seen.kept) > 0


class _FailsFirst:
    """A session end that fails before the JUnit writer runs: only unconfigure is left to remove the spool."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        raise RuntimeError("a plugin failed at the end of the run")


class _ReportPathTaken:
    """The report cannot be written: a directory stands where the file goes (as a full disk or a lost mount)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        Path(session.config.stash[junitxml.xml_key].logfile).mkdir(parents=True)


@pytest.mark.parametrize(
    ("failure", "raised", "left_to_unconfigure"),
    [(_FailsFirst, RuntimeError, True), (_ReportPathTaken, OSError, False)],
    ids=["before-the-writer", "while-writing"],
)
def test_a_run_that_ends_in_an_error_leaves_no_spool(
    run_checks, tmp_path: Path, failure: type, raised: type[Exception], left_to_unconfigure: bool
) -> None:
    seen = _AtSessionFinish()
    with pytest.raises(raised):
        run_checks(lab_data(FAULTS), *NARROW, plugins=(failure(), seen))  # seen, registered last, runs first
    assert seen.writer is StreamingLogXML and seen.spool
    assert seen.spool_left_to_unconfigure is left_to_unconfigure  # the writer removes it even when it fails
    assert _leftovers(tmp_path / "reports") == []


class _NamespacedAttribute:
    """record_xml_attribute with a {uri} name on one check: pytest declares the namespace on the root element."""

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if "[DB01" in item.name and "mbx3]" in item.name:
            xml = item.config.stash[junitxml.xml_key]
            xml.node_reporter(item.nodeid).add_attribute("{urn:example:owner}team", "messaging")


def test_a_namespaced_attribute_is_written_as_pytest_writes_it(run_checks, tmp_path: Path) -> None:
    data = lab_data(FAULTS)
    plain, streamed = _AtSessionFinish(), _AtSessionFinish()
    run_checks(data, *NARROW, *BLOCKED, "--reports-dir", str(tmp_path / "plain"), plugins=(plain, _NamespacedAttribute()))
    run_checks(data, *NARROW, "--reports-dir", str(tmp_path / "streamed"), plugins=(streamed, _NamespacedAttribute()))
    assert streamed.writer is StreamingLogXML and Spooled in streamed.kept
    expected = _normalized(Path(plain.logfile))
    assert '<testsuites xmlns:ns0="urn:example:owner"' in expected and 'ns0:team="messaging"' in expected
    assert _normalized(Path(streamed.logfile)) == expected
