"""Hostile servers and damaged files cost one server or one file, never the run (issue 9).

One server of the 4-server lab answers with a hostile_response fault (dagcheck.lab.wirefaults): malformed
XML, a billion-laughs entity bomb, an external-entity payload, a huge body (streamed with or without a
Content-Length), an IIS HTML error page with HTTP 500, a SOAP fault with no code. The run completes, the
three healthy servers' checks pass, the hostile one's fail with one bounded line, and memory stays bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypsrp.exceptions import WinRMTransportError

from dagcheck import clixml
from dagcheck.lab import wirefaults as wf
from dagcheck.remote import guard
from dagcheck.remote.psrp_wire import _TolerantSerializer
from tests.conftest import ROOT, lab_data

HOSTILE = "mbx2"
CHECKS = [str(ROOT / "checks" / "test_components.py"), str(ROOT / "checks" / "test_host.py")]  # PSRP and WinRS
EXPECTED = {
    "malformed_xml": "the server's answer could not be read (ParseError",
    "billion_laughs": "declares a DTD or entities",
    "xxe": "declares a DTD or entities",
    "huge": "passed the limit of 67,108,864 bytes (connection.max_response_mb)",
    "huge_declared": "announced an answer of 209,715,200 bytes",
    "http_500_html": "HTTP 500 from the server, not a WSMan answer: an HTML page: 'Runtime Error'",
    "fault_without_code": "a SOAP fault with no code and no reason",
}


class _Outcomes:
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.messages: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.failed:
            self.outcomes[report.nodeid] = report.outcome
            if report.failed:
                self.messages[report.nodeid] = str(report.longrepr)


def _run(tmp_path: Path, faults: list[dict[str, Any]]) -> tuple[int, _Outcomes]:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump(lab_data(faults)), encoding="utf-8")
    rec = _Outcomes()
    rc = pytest.main(
        [
            *CHECKS,
            "--inventory",
            str(inventory),
            "--reports-dir",
            str(tmp_path / "reports"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
        ],
        plugins=[rec],
    )
    return int(rc), rec


@pytest.mark.parametrize("shape", sorted(EXPECTED))
def test_hostile_response_fault_fails_only_that_server(tmp_path, shape) -> None:
    rc, rec = _run(tmp_path, [{"kind": "hostile_response", "server": HOSTILE, "shape": shape}])
    assert rc == 1, "the run completes with failed checks (not interrupted, not an internal error)"
    hostile = {n: o for n, o in rec.outcomes.items() if HOSTILE in n}
    healthy = {n: o for n, o in rec.outcomes.items() if HOSTILE not in n}
    assert hostile and set(hostile.values()) == {"failed"}
    assert len(healthy) > 100 and set(healthy.values()) == {"passed"}
    for node, message in rec.messages.items():
        assert EXPECTED[shape] in message, (node, message)
        assert "Traceback" not in message and len(message) < 600, message


def test_a_hostile_answer_only_to_receive_still_costs_only_that_server(tmp_path) -> None:
    """The shell opens fine; the hostile answer comes with the output (mid-command)."""
    rc, rec = _run(tmp_path, [{"kind": "hostile_response", "server": HOSTILE, "shape": "billion_laughs", "action": "Receive"}])
    assert rc == 1
    assert {o for n, o in rec.outcomes.items() if HOSTILE not in n} == {"passed"}
    assert {o for n, o in rec.outcomes.items() if HOSTILE in n} == {"failed"}


# Peak RSS once collection (where every source is read) is done, before reports are written.
MEASURE = """
import json, resource, sys, pytest
class Peak:
    kb = 0
    def pytest_collection_finish(self, session):
        Peak.kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rc = pytest.main(sys.argv[1:], plugins=[Peak()])
print("MEASURED " + json.dumps({"rc": int(rc), "maxrss_kb": Peak.kb}))
"""


def _max_rss(tmp_path: Path, name: str, faults: list[dict[str, Any]]) -> dict[str, int]:
    folder = tmp_path / name
    folder.mkdir()
    inventory = folder / "inventory.yml"
    inventory.write_text(yaml.safe_dump(lab_data(faults)), encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE,
            *CHECKS,
            "--inventory",
            str(inventory),
            "--reports-dir",
            str(folder / "reports"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MEASURED "))
    return json.loads(line.removeprefix("MEASURED "))


def test_a_200_mb_streamed_answer_keeps_memory_bounded(tmp_path) -> None:
    """The body has no Content-Length: the cap is enforced while reading. Peak RSS of the whole run (a
    subprocess, at the end of collection, where every source is read) grows by less than 300 MB over a healthy
    run: each answer being read holds at most the cap (64 MiB), and a server has up to 3 shells reading at once
    (connection.max_runspaces). Figures printed with -s."""
    healthy = _max_rss(tmp_path, "healthy", [])
    hostile = _max_rss(tmp_path, "hostile", [{"kind": "hostile_response", "server": HOSTILE, "shape": "huge", "size_mb": 200}])
    growth_mb = (hostile["maxrss_kb"] - healthy["maxrss_kb"]) / 1024
    print(
        f"max RSS: healthy run {healthy['maxrss_kb'] / 1024:.0f} MB, with a 200 MB answer "
        f"{hostile['maxrss_kb'] / 1024:.0f} MB (+{growth_mb:.0f} MB)"
    )
    assert healthy["rc"] == 0 and hostile["rc"] == 1
    assert growth_mb < 300


# ---- the guard itself ------------------------------------------------------------------------------


class _FakeResponse:
    def __init__(self, chunks: list[bytes], length: int | None = None) -> None:
        self.headers = {"Content-Length": str(length)} if length is not None else {}
        self._chunks = chunks
        self.read = 0
        self.closed = False

    def iter_content(self, size: int):
        for chunk in self._chunks:
            self.read += len(chunk)
            yield chunk

    def close(self) -> None:
        self.closed = True


def test_the_cap_stops_reading_as_soon_as_it_is_passed() -> None:
    endless = _FakeResponse([b"x" * 1024] * 10_000)
    with pytest.raises(guard.ResponseRefused, match="passed the limit of 4,096 bytes"):
        guard.read_bounded(endless, 4096)
    assert endless.closed and endless.read <= 5 * 1024
    declared = _FakeResponse([b"never read"], length=10**9)
    with pytest.raises(guard.ResponseRefused, match="announced an answer of 1,000,000,000 bytes"):
        guard.read_bounded(declared, 4096)
    assert declared.read == 0
    assert guard.read_bounded(_FakeResponse([b"ab", b"cd"]), 4) == b"abcd"


@pytest.mark.parametrize("payload", [wf._LAUGHS, wf._XXE, b"<!doctype x><x/>", b"<x><!ENTITY a 'b'></x>"])
def test_dtds_are_refused_in_envelopes_psrp_messages_and_output_objects(payload) -> None:
    with pytest.raises(guard.ResponseRefused):
        guard.refuse_dtd(payload)
    with pytest.raises(guard.ResponseRefused):
        _TolerantSerializer().deserialize(payload.decode())
    with pytest.raises(guard.ResponseRefused):
        clixml.from_element_text(payload.decode())


def test_an_http_error_is_summarised_and_a_wsman_fault_passes_through() -> None:
    def answer(code: int, text: str):
        def send(message: bytes, **kwargs: Any) -> bytes:
            raise WinRMTransportError("http", code, text)

        return guard._vetted_send(send)

    with pytest.raises(guard.ResponseRefused) as exc:
        answer(500, wf._IIS_500.decode())(b"")
    assert exc.value.reason == "HTTP 500 from the server, not a WSMan answer: an HTML page: 'Runtime Error'"
    with pytest.raises(guard.ResponseRefused, match="HTTP 502 .*: text: 'Bad Gateway'"):
        answer(502, "Bad Gateway\r\n")(b"")
    with pytest.raises(guard.ResponseRefused, match="an empty body"):
        answer(503, "")(b"")
    fault = (
        wf.SOAP_OPEN + b"<s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code></s:Fault></s:Body></s:Envelope>"
    ).decode()
    with pytest.raises(WinRMTransportError):
        answer(500, fault)(b"")


def test_a_summary_is_bounded_and_printable() -> None:
    summary = guard.summarize(b"\x00\x01\xff" + b"A" * 100_000)
    assert len(summary) < 260 and "\x00" not in summary and summary.endswith("...'")


# ---- a damaged journal never stands between an operator and a rollback ---------------------------------

from dagcheck.maintenance.journal import Journal  # noqa: E402
from tests.unit.maintenance.test_runner import Lab  # noqa: E402


def _not_utf8(path: Path) -> None:
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([*lines[:3], b"\xff\xfe garbage \x80\x81", *lines[3:]]))


def _cut_last_line(path: Path) -> None:
    path.write_bytes(path.read_bytes().rstrip(b"\n")[:-7])


def _directory(path: Path) -> None:
    path.unlink()
    (path / "sub").mkdir(parents=True)


DAMAGE = {
    "not_utf8": (_not_utf8, "has 1 unreadable line(s) (not UTF-8 or not JSON; first: line 4)"),
    "cut_last_line": (_cut_last_line, "had its last line cut off"),
    "directory": (_directory, "is not a file"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_rollback_with_a_damaged_journal_returns_the_server_to_service(tmp_path, damage) -> None:
    lab = Lab(tmp_path, expectations__activation_policy="IntrasiteOnly")
    for server in lab.org.servers.values():
        server.activation_policy = "IntrasiteOnly"
    assert lab.transition("enter").run().ok
    lab.assert_in_maintenance()
    damage_fn, said = DAMAGE[damage]
    damage_fn(lab.journal.path)
    original = sorted(p.name for p in tmp_path.iterdir())
    lab.journal = Journal.for_server(tmp_path, "mbx1")
    assert lab.journal.entries() is not None  # reading a damaged journal never raises
    note = lab.journal.set_aside_if_damaged("mbx1")
    assert note is not None and said in note and "\n" not in note
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("journal-mbx1.jsonl.damaged-")]
    assert len(aside) == 1 and aside[0].name in note, note  # kept, named, not deleted
    left = lab.transition("exit").run()
    assert left.ok, left.error
    # The policy recorded before entry survives where the entries could still be read; a directory held none,
    # so the inventory's expectation (also IntrasiteOnly here) is restored.
    lab.assert_in_service("IntrasiteOnly")
    assert lab.journal.where_it_stands() is None and "journal-mbx1.jsonl" in original


def test_a_dry_run_only_says_what_apply_will_do_with_a_damaged_journal(tmp_path) -> None:
    journal = Journal.for_server(tmp_path, "mbx1")
    journal.path.write_bytes(b'{"event": "step"}\n\xff\xff\n')
    note = journal.set_aside_if_damaged("mbx1", move=False)
    assert note and "--apply keeps it aside" in note
    assert [p.name for p in tmp_path.iterdir()] == ["journal-mbx1.jsonl"]


def test_a_whole_last_line_without_its_newline_is_completed_not_set_aside(tmp_path) -> None:
    journal = Journal.for_server(tmp_path, "mbx1")
    journal.path.write_bytes(b'{"event": "policy_recorded", "policy": "Blocked"}')
    assert journal.set_aside_if_damaged("mbx1") is None
    journal.append(event="step", step="drain")
    assert [e["event"] for e in journal.entries()] == ["policy_recorded", "step"]


@pytest.mark.parametrize("damage", ["directory"])  # the other damages: the in-process rollback test above
def test_postflight_apply_rolls_back_a_server_in_maintenance_whose_journal_is_damaged(tmp_path, run_checks, damage) -> None:
    reports = tmp_path / "reports"
    journal = reports / "journal-mbx1.jsonl"
    reports.mkdir()
    journal.write_bytes(b'{"event": "transition_started", "direction": "enter"}\n' * 3)
    DAMAGE[damage][0](journal)
    result = run_checks(
        lab_data([{"kind": "in_maintenance", "server": "mbx1"}]), "--phase", "postflight", "--server", "mbx1", "--apply"
    )
    assert result.exit_code == 0, result.messages
    assert result.outcomes and set(result.outcomes.values()) <= {"passed", "skipped"} and not result.failed()
    assert len(list(reports.glob("journal-mbx1.jsonl.damaged-*"))) == 1
    events = [e["event"] for e in Journal(journal).entries()]
    assert events[-1] == "transition_completed"
    changed = [c for s, _, c in result.calls if s == "mbx1" and c.startswith("Set-ServerComponentState")]
    assert changed, "the exit ran (components set Active)"
