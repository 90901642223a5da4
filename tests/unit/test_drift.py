"""Configuration drift across maintenance (dagcheck/drift.py, checks/test_drift.py).

End to end against a persistent lab, each phase its own process as an operator runs them: enter
maintenance with --apply (the baseline is saved), the lab's patch (with the patch_resets_settings fault:
setup resets owa's ExternalUrl and ecp's Extended Protection, as a CU can), leave with --apply, and the
post-maintenance report's "Configuration drift" section and results JSON name both resets; the build is
the expected change. Without the fault the same sequence reports only the build.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dagcheck import drift
from dagcheck.drift import Baseline, Setting
from tests.processes import budget, run
from tests.scenarios.test_rolling_patch import ENV, ROOT, TARGET, Lab


def _pytest(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--inventory",
            str(lab.inventory),
            "--reports-dir",
            str(lab.folder / "reports"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-rfEs",
            *args,
        ],
        cwd=ROOT,
        env=ENV,
        timeout=budget(300),
    )


def _patch(lab: Lab, server: str) -> None:
    proc = run(
        [
            sys.executable,
            "-m",
            "dagcheck.lab",
            "patch",
            "--state",
            str(lab.state),
            "--server",
            server,
            "--build",
            TARGET,
            "--reboot-seconds",
            "1",
        ],
        cwd=ROOT,
        env=ENV,
        timeout=budget(60),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The lab's reboot: the server refuses connections for a second, then its services start 0.1 s apart.
    _wait_until_back(lab, server)


def _wait_until_back(lab: Lab, server: str, timeout: float = 60) -> None:  # nominal: budget() scales it
    """What a rolling run's patch step waits for before the exit: the server answers again and
    Test-ServiceHealth finds every required service running (read over the wire, a fresh session each look)."""
    from dagcheck.errors import RemoteError
    from dagcheck.inventory import load_inventory
    from dagcheck.maintenance.live import Live
    from dagcheck.session import DagcheckSession

    inventory = load_inventory(lab.inventory)
    deadline = time.monotonic() + budget(timeout)
    last = "not read yet"
    while time.monotonic() < deadline:
        session = DagcheckSession(inventory, servers=[server])
        try:
            stopped = {
                s
                for h in Live(session.transport, inventory.expectations).read(server, "services")
                for s in h.services_not_running
            }
            if not stopped:
                return
            last = f"services not running yet: {', '.join(sorted(stopped))}"
        except RemoteError as exc:
            last = f"not answering ({exc})"
        finally:
            session.close()
        time.sleep(0.2)
    raise AssertionError(f"{server} did not come back within {timeout:g} s after its patch (last: {last})")


def _post_maintenance(lab: Lab, server: str) -> tuple[subprocess.CompletedProcess[str], dict, str]:
    proc = _pytest(lab, "--phase", "postflight", "--server", server, "--apply")
    results = sorted((lab.folder / "reports" / "history" / "adhoc").glob("adhoc-postflight-*.json"))
    assert results, proc.stdout + proc.stderr
    summaries = sorted((lab.folder / "reports").glob("summary-adhoc-postflight-*.html"))
    return proc, json.loads(results[-1].read_text(encoding="utf-8")), summaries[-1].read_text(encoding="utf-8")


def _cycle(lab: Lab, server: str) -> tuple[subprocess.CompletedProcess[str], dict, str]:
    entered = _pytest(lab, "--phase", "maintenance", "--server", server, "--apply")
    assert entered.returncode == 0, entered.stdout[-3000:] + entered.stderr[-2000:]
    assert drift.path_for(lab.folder / "reports", server).is_file()
    _patch(lab, server)
    return _post_maintenance(lab, server)


@pytest.fixture
def labs(tmp_path, monkeypatch):
    for name in ("DAGCHECK_LAB_USERNAME", "DAGCHECK_LAB_PASSWORD"):  # for _wait_until_back's reads, in this process
        monkeypatch.setenv(name, ENV[name])
    made: list[Lab] = []

    def make(faults: list[dict] | None = None) -> Lab:
        made.append(Lab(tmp_path / f"lab{len(made)}", faults))
        return made[-1]

    yield make
    for lab in made:
        lab.stop()


def test_a_patch_that_resets_a_vdir_url_and_extended_protection_is_reported(labs) -> None:
    lab = labs([{"kind": "patch_resets_settings", "server": "mbx2"}])
    proc, results, summary = _cycle(lab, "mbx2")
    assert proc.returncode == 1, proc.stdout[-3000:]
    [found] = [d for d in results["drift"] if d["server"] == "mbx2"]
    by_setting = {(d["item"], d["name"]): d for d in found["differences"]}
    url = by_setting[("owa (Default Web Site)", "ExternalUrl")]
    assert (url["before"], url["after"], url["verdict"]) == ("https://mail.lab.contoso.test/owa", "", "unexpected")
    ep = by_setting[("ecp (Default Web Site)", "ExtendedProtectionTokenChecking")]
    assert (ep["before"], ep["after"], ep["verdict"]) == ("Require", "None", "critical")
    assert by_setting[("IIS Default Web Site/ecp", "tokenChecking")]["verdict"] == "critical"
    build = by_setting[("mbx2", "ExSetup.exe")]
    assert (build["after"], build["verdict"]) == (TARGET, "expected")
    # Nothing else moved: the reset settings and the build are the whole drift.
    assert {d["verdict"] for d in found["differences"] if d["area"] not in ("build", "urls", "extended_protection")} == set()
    checks = {c["id"]: c for c in results["checks"] if c["id"].startswith("DAG-DRIFT")}
    assert checks["DAG-DRIFT-001"]["outcome"] == "fail"
    assert "ecp (Default Web Site) ExtendedProtectionTokenChecking: Require -> None" in checks["DAG-DRIFT-001"]["actual"]
    assert checks["DAG-DRIFT-002"]["outcome"] == "warn"
    assert "owa (Default Web Site) ExternalUrl: https://mail.lab.contoso.test/owa -> (empty)" in checks["DAG-DRIFT-002"]["actual"]
    assert "Configuration drift" in summary
    assert "https://mail.lab.contoso.test/owa" in summary and "ExtendedProtectionTokenChecking" in summary


def test_a_clean_patch_drifts_only_in_its_build(labs) -> None:
    lab = labs()
    proc, results, summary = _cycle(lab, "mbx3")
    # One member patched, outside a declared window: build parity fails, as it must; nothing else does.
    assert {c["id"] for c in results["checks"] if c["outcome"] == "fail"} == {"DAG-BUILD-002"}, proc.stdout[-3000:]
    [found] = results["drift"]
    assert found["compared"] > 150  # vdirs of both sites, IIS, SCP, 5 connectors, certificates, components ...
    assert {(d["name"], d["verdict"]) for d in found["differences"]} == {
        ("ExSetup.exe", "expected"),
        ("AdminDisplayVersion", "expected"),
    } or {(d["name"], d["verdict"]) for d in found["differences"]} == {("ExSetup.exe", "expected")}
    assert found["not_compared"] == {}
    assert {c["id"]: c["outcome"] for c in results["checks"] if c["id"].startswith("DAG-DRIFT")} == {
        "DAG-DRIFT-001": "pass",
        "DAG-DRIFT-002": "pass",
    }
    assert "Configuration drift" in summary


def test_a_dry_run_saves_no_baseline_and_says_where_it_would(labs) -> None:
    lab = labs()
    proc = _pytest(lab, "--phase", "maintenance", "--server", "mbx4")
    assert not drift.path_for(lab.folder / "reports", "mbx4").exists()
    assert "configuration baseline is saved to" in proc.stdout, proc.stdout[-3000:]


def test_post_maintenance_without_a_baseline_says_why(labs) -> None:
    lab = labs()
    proc = _pytest(lab, "--phase", "postflight", "--server", "mbx4", "-k", "DRIFT or expected_settings or unexpected_change")
    assert "no configuration baseline for mbx4" in proc.stdout, proc.stdout[-3000:]


# ---- the comparison itself -----------------------------------------------------------------------


def _baseline(*settings: Setting, unread: dict[str, str] | None = None) -> Baseline:
    return Baseline("mbx1", dt.datetime(2026, 12, 4, tzinfo=dt.UTC), list(settings), unread or {})


def test_compare_marks_expected_critical_and_unexpected() -> None:
    before = _baseline(
        Setting("build", "mbx1", "ExSetup.exe", "15.2.2562.46"),
        Setting("extended_protection", "owa (Default Web Site)", "ExtendedProtectionTokenChecking", "Require"),
        Setting("urls", "owa (Default Web Site)", "ExternalUrl", "https://mail/owa"),
        Setting("certificates", "bound to IIS", "Thumbprint", "AAA"),
    )
    after = [
        Setting("build", "mbx1", "ExSetup.exe", "15.2.2562.49"),
        Setting("extended_protection", "owa (Default Web Site)", "ExtendedProtectionTokenChecking", "None"),
        Setting("urls", "owa (Default Web Site)", "ExternalUrl", "https://mail/owa"),
        Setting("receive_connectors", "Relay MBX1", "Bindings", "0.0.0.0:25"),
    ]
    found = drift.compare(before, after, {})
    verdicts = {(d.area, d.name): d.verdict for d in found.differences}
    assert verdicts == {
        ("build", "ExSetup.exe"): "expected",
        ("extended_protection", "ExtendedProtectionTokenChecking"): "critical",
        ("certificates", "Thumbprint"): "unexpected",  # removed
        ("receive_connectors", "Bindings"): "unexpected",
    }  # added
    removed = next(d for d in found.differences if d.area == "certificates")
    assert (removed.before, removed.after) == ("AAA", None)
    assert [d.area for d in found.critical] == ["extended_protection"]
    # The inventory can make an area critical.
    assert {d.area for d in drift.compare(before, after, {}, (*drift.INVENTORY_EXPECTED, "certificates")).critical} == {
        "extended_protection",
        "certificates",
    }


def test_an_area_unreadable_on_either_side_is_not_compared_and_says_why() -> None:
    before = _baseline(Setting("urls", "owa (Default Web Site)", "ExternalUrl", "x"), unread={"ssl": "access denied"})
    found = drift.compare(before, [], {"urls": "mbx1: Get-OwaVirtualDirectory: timed out"})
    assert found.differences == []
    assert found.not_compared == {
        "ssl": "not read before entering maintenance: access denied",
        "urls": "not read after leaving maintenance: mbx1: Get-OwaVirtualDirectory: timed out",
    }


def test_a_damaged_baseline_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = drift.path_for(tmp_path, "mbx1")
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(drift.BaselineError, match="baseline-mbx1.json"):
        drift.load(tmp_path, "mbx1")
    path.write_text(json.dumps({"format": 99}), encoding="utf-8")
    with pytest.raises(drift.BaselineError, match="format 99"):
        drift.load(tmp_path, "mbx1")


def test_a_baseline_round_trips(tmp_path: Path) -> None:
    original = _baseline(Setting("ssl", "IIS Default Web Site/owa", "sslFlags", "Ssl, Ssl128"), unread={"certificates": "x"})
    drift.save(original, tmp_path)
    assert drift.load(tmp_path, "mbx1") == original


def test_the_labs_restart_starts_services_in_order_after_the_server_is_back() -> None:
    from dagcheck.inventory import load_inventory
    from dagcheck.lab.state import Organization

    org = Organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    server = org.server("mbx1")
    order = org.schedule_restart(server, down_seconds=0.2, step=0.2)
    assert order[:2] == ["ClusSvc", "MSExchangeADTopology"] and "W3Svc" not in order
    org.start_due_services()
    assert all(server.services[s] == "Stopped" for s in order) and server.services["W3Svc"] == "Running"
    time.sleep(0.5)  # back at 0.2 s; the first service at 0.4 s, the second at 0.6 s
    org.start_due_services()
    assert server.services["ClusSvc"] == "Running" and server.services[order[-1]] == "Stopped"
    time.sleep(0.2 * len(order) + 0.3)
    org.start_due_services()
    assert all(server.services[s] == "Running" for s in order)


# ---- issue 24 item 4: a baseline that cannot be this server's fails both checks, naming the file ------


def test_a_directory_in_place_of_the_baseline_is_an_error_not_no_baseline(tmp_path: Path) -> None:
    drift.path_for(tmp_path, "mbx1").mkdir()
    with pytest.raises(drift.BaselineError, match=r"baseline-mbx1\.json: not a file"):
        drift.load(tmp_path, "mbx1")
    assert drift.load(tmp_path, "mbx2") is None  # no file at all is still "no baseline"


def test_a_baseline_of_another_server_is_refused_naming_the_file(tmp_path: Path) -> None:
    other = Baseline("mbx2", dt.datetime(2026, 12, 4, tzinfo=dt.UTC), [Setting("build", "mbx2", "ExSetup.exe", "15.2.2562.46")])
    drift.save(other, tmp_path)
    drift.path_for(tmp_path, "mbx2").rename(drift.path_for(tmp_path, "mbx1"))
    with pytest.raises(drift.BaselineError, match=r"baseline-mbx1\.json: a baseline of mbx2, not of mbx1"):
        drift.load(tmp_path, "mbx1")


def test_a_baseline_of_another_build_line_is_refused_naming_the_file(tmp_path: Path) -> None:
    drift.save(_baseline(Setting("build", "mbx1", "ExSetup.exe", "15.1.2507.39")), tmp_path)
    loaded = drift.load(tmp_path, "mbx1")
    assert loaded is not None
    after = [Setting("build", "mbx1", "ExSetup.exe", "15.2.2562.49")]
    with pytest.raises(drift.BaselineError, match=r"baseline-mbx1\.json: taken of Exchange build line 15\.1.*runs 15\.2"):
        drift.compare(loaded, after, {})
    assert drift.compare(loaded, [Setting("build", "mbx1", "ExSetup.exe", "15.1.2507.44")], {}).differences  # a CU: compared
