"""Offline analysis: --save writes what the servers returned, --replay judges it again with no connection.

The proof the issue asks for: a run against the lab with two faults is saved, then replayed, and
every check's outcome is the same. The CSS-Exchange captures (Export-Clixml on a real Exchange 2019
server) replay as they are, with HealthChecker's file names.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagcheck.errors import BadResponse, CmdletFailed
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.replay import ReplayError, ReplayTransport, check_folder
from tests import shared_fixtures
from tests.conftest import ROOT, lab_data

FIXTURES = shared_fixtures.css_exchange("E19")
FAULTS = [
    {"kind": "copy_failed", "database": "DB01", "server": "mbx2"},
    {"kind": "component_inactive", "server": "mbx3", "component": "HubTransport", "requester": "Functional"},
]


def _refuse_lab(*args: object, **kwargs: object) -> None:
    raise AssertionError("a replay started the lab")


def test_save_then_replay_gives_every_check_the_same_outcome(run_checks, tmp_path: Path, monkeypatch) -> None:
    saved = tmp_path / "saved"
    live = run_checks(lab_data(FAULTS), "--save", str(saved))
    assert live.failed(), "the faults must turn some checks red, or the comparison proves nothing"
    assert (saved / "manifest.json").is_file() and (saved / "mbx1" / "Get-ServerComponentState.xml").is_file()

    monkeypatch.setattr("dagcheck.lab.embedded.start_embedded", _refuse_lab)
    replayed = run_checks(lab_data(FAULTS), "--replay", str(saved))
    assert replayed.outcomes == live.outcomes
    assert replayed.exit_code == live.exit_code == 1
    assert {c[2] for c in replayed.calls} <= {c[2] for c in live.calls}


def test_replay_of_a_changed_folder_changes_the_verdict(run_checks, tmp_path: Path) -> None:
    """Replay really reads the files: a healthy save with one server's component file swapped for the
    faulted one's fails exactly that server's component check."""
    healthy, faulted = tmp_path / "healthy", tmp_path / "faulted"
    run_checks(lab_data([]), "--save", str(healthy), "-k", "component")
    run_checks(lab_data(FAULTS), "--save", str(faulted), "-k", "component")
    shutil.copy(faulted / "mbx3" / "Get-ServerComponentState.xml", healthy / "mbx3" / "Get-ServerComponentState.xml")
    result = run_checks(lab_data([]), "--replay", str(healthy), "-k", "component")
    assert result.short_failed() == {"test_component_is_active[mbx3:HubTransport]"}


def _fixture_inventory() -> dict:
    data = lab_data([])
    data.pop("lab")
    data["sites"] = [{"name": "Default-First-Site-Name"}]
    data["servers"] = [{"name": "Solo-E19A", "fqdn": "Solo-E19A.Solo.com", "site": "Default-First-Site-Name", "dag": "DAG1"}]
    data["dags"][0]["members"] = ["Solo-E19A"]
    data["expectations"]["autodiscover"] = {}
    return data


@shared_fixtures.needs(FIXTURES)
def test_real_export_clixml_files_replay(run_checks, tmp_path: Path) -> None:
    folder = tmp_path / "e19"
    shutil.copytree(FIXTURES, folder / "Solo-E19A")
    result = run_checks(_fixture_inventory(), "--replay", str(folder), "-k", "component or service or build or cluster")
    judged = {n: o for n, o in result.outcomes.items() if "not in the saved data" not in result.messages.get(n, "")}
    # Sources the capture has are judged from its data; the ones it lacks fail as missing, never silently.
    # (the object ids come from the data: the capture names the server in lower case)
    assert any("test_component_is_active[solo-e19a:hubtransport]" in n.lower() and o == "passed" for n, o in judged.items())
    assert any("test_required_services_running" in n for n in judged)
    # a real verdict on real data: Exchange 2019 CU11 (15.2.986.5) is out of support (DAG-BUILD-004 says so;
    # DAG-BUILD-001, the SU currency within a CU, then skips rather than report it twice)
    build = [n for n in result.failed() if "test_product_and_cu_supported" in n]
    assert build and "15.2.986" in result.messages[build[0]] and "out of support" in result.messages[build[0]]
    assert any("test_build_is_current" in n and o == "skipped" for n, o in result.outcomes.items())
    missing = [m for m in result.messages.values() if "not in the saved data" in m]
    assert missing, "the capture has no Get-ClusterNode or queues: those checks must say so"


def test_replay_refuses_a_change_and_names_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "mbx1").mkdir()
    (tmp_path / "mbx1" / "Get-Queue.xml").write_text(
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"></Objs>', encoding="utf-8"
    )
    transport = ReplayTransport(tmp_path)
    assert transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-Queue", Server="mbx1")) == []
    with pytest.raises(CmdletFailed, match="read-only"):
        transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Set-MailboxServer", Identity="mbx1"))
    with pytest.raises(CmdletFailed, match=r"not in the saved data .*Get-ClusterNode\.xml"):
        transport.run("mbx1", Endpoint.WINDOWS, Command.of("Get-ClusterNode"))
    with pytest.raises(CmdletFailed, match="not in the saved data"):
        transport.run_cmd("mbx1", "sc.exe queryex type= service state= all")


def test_replay_folder_must_hold_saved_data(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="not a folder"):
        check_folder(tmp_path / "nope")
    with pytest.raises(ReplayError, match="no saved CLIXML"):
        check_folder(tmp_path)


@pytest.mark.parametrize("extra", [["--apply", "--phase", "postflight", "--server", "mbx1"], ["--save", "x"]])
def test_replay_refuses_transitions_and_save_with_a_usage_error(tmp_path: Path, extra: list[str]) -> None:
    (tmp_path / "mbx1").mkdir()
    (tmp_path / "mbx1" / "Get-Queue.xml").write_text("<Objs/>", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "checks"),
            "--replay",
            str(tmp_path),
            *extra,
            "--reports-dir",
            str(tmp_path / "r"),
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--replay" in proc.stderr and "Traceback" not in proc.stderr


def test_export_script_reads_what_dagcheck_collects() -> None:
    """The PowerShell export cannot run here (no Exchange); what can drift is its list of commands,
    so every source dagcheck collects must be in it, by the file name replay looks for."""
    from dagcheck.inventory import Expectations
    from dagcheck.remote.replay import saved_name
    from dagcheck.sources.registry import HOST_SOURCES, SOURCES

    script = (ROOT / "contrib" / "export" / "Export-DagcheckData.ps1").read_text(encoding="utf-8")
    for source in SOURCES.values():
        for command in source.commands("mbx1"):
            name = saved_name(command)
            assert f"'{name}'" in script, f"{name} is collected but not exported"
            for parameter, value in command.parameters:
                if value is True:
                    assert f"-{parameter}" in script, f"{name} is collected with -{parameter}"
    for source in HOST_SOURCES.values():
        for line in source.lines("mbx1", Expectations()):
            assert f"'{line}'" in script or line.startswith("fsutil volume diskfree"), f"{line!r} not exported"


# ---- issue 24 item 5: one bad saved file costs only that server's source, as on the live path ----------

OBJS = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">{}</Objs>'
QUEUE = Command.of("Get-Queue", Server="mbx1")
XXE = '<?xml version="1.0"?><!DOCTYPE Objs [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + OBJS.format("<S>&x;</S>")


def _saved(tmp_path: Path, body: bytes, name: str = "Get-Queue.xml") -> ReplayTransport:
    (tmp_path / "mbx1").mkdir(exist_ok=True)
    (tmp_path / "mbx1" / "Get-ServerComponentState.xml").write_text(OBJS.format(""), encoding="utf-8")
    (tmp_path / "mbx1" / name).write_bytes(body)
    return ReplayTransport(tmp_path)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<Objs><Obj", "could not be read (ParseError"),
        (XXE.encode(), "declares a DTD or entities"),
        ("<Objs>caf\u00e9</Objs>".encode("latin-1"), "neither UTF-8 nor UTF-16 text (byte 0xe9"),
        (b"\xff\xfe<\x00O\x00\x00\xd8", "not UTF-16 text after its byte-order mark"),
    ],
)
def test_a_malformed_saved_file_is_that_servers_bad_response(tmp_path: Path, body: bytes, why: str) -> None:
    transport = _saved(tmp_path, body)
    with pytest.raises(BadResponse, match=re.escape(why)) as err:
        transport.run("mbx1", Endpoint.EXCHANGE, QUEUE)
    assert "Get-Queue.xml" in str(err.value) and err.value.server == "mbx1"
    assert transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-ServerComponentState", Identity="mbx1")) == []


def test_a_utf16_export_clixml_file_replays(tmp_path: Path) -> None:
    """Windows PowerShell's Export-Clixml writes UTF-16 LE with a byte-order mark."""
    transport = _saved(tmp_path, OBJS.format("<S>queue</S>").encode("utf-16"))
    assert transport.run("mbx1", Endpoint.EXCHANGE, QUEUE) == ["queue"]


@pytest.mark.parametrize("text", ["{not json", '"a string"', '{"sc.exe query": {"stdout": "x"}}', "[" * 100_000])
def test_a_broken_winrs_json_is_that_servers_bad_response(tmp_path: Path, text: str) -> None:
    transport = _saved(tmp_path, text.encode(), "winrs.json")
    with pytest.raises(BadResponse, match=r"winrs\.json"):
        transport.run_cmd("mbx1", "sc.exe query")


def test_a_2_gib_saved_file_is_refused_unread(tmp_path: Path) -> None:
    transport = _saved(tmp_path, b"")
    with (tmp_path / "mbx1" / "Get-Queue.xml").open("wb") as f:
        f.truncate(2 * 1024**3)  # sparse: nothing on disk
    with pytest.raises(BadResponse, match="over the limit of 67,108,864"):
        transport.run("mbx1", Endpoint.EXCHANGE, QUEUE)


def test_a_symlink_out_of_the_saved_folder_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.xml"
    outside.write_text(OBJS.format("<S>secret</S>"), encoding="utf-8")
    saved = tmp_path / "saved"
    saved.mkdir()
    transport = _saved(saved, b"")
    (saved / "mbx1" / "Get-Queue.xml").unlink()
    (saved / "mbx1" / "Get-Queue.xml").symlink_to(outside)
    with pytest.raises(BadResponse, match="leads out of the saved folder"):
        transport.run("mbx1", Endpoint.EXCHANGE, QUEUE)


@pytest.mark.parametrize(
    ("manifest", "why"),
    [
        ({"format": "something-else", "version": 1}, "format is 'something-else'"),
        ({"format": "dagcheck-saved-data", "version": 2}, "saved data of version 2; this dagcheck replays version 1"),
        ("not an object", "format is None"),
    ],
)
def test_a_manifest_of_another_format_or_version_is_refused(tmp_path: Path, manifest: object, why: str) -> None:
    _saved(tmp_path, OBJS.format("").encode())
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ReplayError, match=re.escape(why)):
        check_folder(tmp_path)


def test_a_replay_with_one_damaged_file_fails_only_that_server(run_checks, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    run_checks(lab_data([]), "--save", str(saved), "-k", "component")
    (saved / "mbx3" / "Get-ServerComponentState.xml").write_text(XXE, encoding="utf-8")
    result = run_checks(lab_data([]), "--replay", str(saved), "-k", "component")
    assert result.exit_code == 1 and result.failed()
    assert all("mbx3" in n for n in result.failed()), result.failed()
    assert any("mbx1" in n and o == "passed" for n, o in result.outcomes.items())
    assert all("declares a DTD" in result.messages[n] for n in result.failed())


def test_save_keeps_only_the_iis_sections_dagcheck_reads(run_checks, tmp_path: Path) -> None:
    from dagcheck.sources import iis_config as iis

    saved = tmp_path / "saved"
    run_checks(lab_data([]), "--save", str(saved), "-k", "extended_protection or EP or iis")
    entries = json.loads((saved / "mbx1" / "winrs.json").read_text(encoding="utf-8"))
    [kept] = [e["stdout"] for line, e in entries.items() if "applicationHost.config" in line]
    # The lab's file names each application's pool and physical path: not read by dagcheck, so not saved.
    assert "applicationPool=" not in kept and "physicalPath" not in kept and "<location" in kept
    assert kept == iis.reduce_application_host(kept)  # already only what dagcheck reads


@shared_fixtures.needs(FIXTURES.parent / "ExtendedProtection")
def test_the_reduced_application_host_reads_as_the_whole_file() -> None:
    from dagcheck.sources import iis_config as iis

    for path in sorted((FIXTURES.parent / "ExtendedProtection").glob("*.config")):
        text = path.read_text(encoding="utf-8-sig")
        reduced = iis.reduce_application_host(text)
        assert "applicationPools" in text and "applicationPools" not in reduced and "processModel" not in reduced
        whole, cut = iis.parse_application_host(text), iis.parse_application_host(reduced)
        assert cut.applications == whole.applications
        for location in sorted(whole.applications):
            site, _, vdir = location.partition("/")
            assert cut.location("s", site, vdir) == whole.location("s", site, vdir), location
