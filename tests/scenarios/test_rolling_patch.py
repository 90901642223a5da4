"""Rolling maintenance of a DAG (dagcheck/maintenance/rolling.py), over the wire against a persistent lab
(`python -m dagcheck.lab serve --state FILE`), each member's phases as their own processes.

The patch command is the lab's own (`python -m dagcheck.lab patch --state FILE`): it installs the target
build on the member in maintenance and restarts it (unreachable for a second). A full rolling run of the
4-member DAG takes about two minutes on 2 cores (eight pytest runs plus the waits for the reboots).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dagcheck.lab import persist
from dagcheck.rules.builds import parse_build
from dagcheck.rules.host import supported_windows
from dagcheck.rules.rolling import MemberFacts, rolling_order, target_problems, window_parity
from tests.processes import budget, run, serve_lab, spawn, stop_lab

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "rolling-test-only"
ENV = {**os.environ, "DAGCHECK_LAB_USERNAME": "lab\\dagcheck", "DAGCHECK_LAB_PASSWORD": PASSWORD}
# Exchange Server SE RTM: the lab starts on the Aug26SU and the rolling run installs the Sep26SU. (An
# Exchange 2019 start would fail every member's gate on DAG-BUILD-004, out of support, by design.)
TARGET = "15.2.2562.49"
OLD = "15.2.2562.46"
ORDER = ["mbx2", "mbx3", "mbx4", "mbx1"]  # mbx1 holds the PAM in the lab: last; the rest one database each


class Lab:
    def __init__(self, folder: Path, faults: list[dict] | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        self.state = folder / "lab.json"
        self.inventory = folder / "inventory.yml"
        source = yaml.safe_load((ROOT / "inventory/lab.yml").read_text(encoding="utf-8"))
        source["lab"]["faults"] = faults or []
        source["lab"]["build"] = OLD
        self.source = folder / "lab-source.yml"
        self.source.write_text(yaml.safe_dump(source), encoding="utf-8")
        self.proc = serve_lab(self.source, self.state, self.inventory, ENV, ROOT)

    def stop(self) -> None:
        stop_lab(self.proc)

    def rolling(self, *args: str) -> tuple[int, str]:
        """The run's exit code and output; `longest_silence`: the longest time it went without a line."""
        patch = f"{sys.executable} -m dagcheck.lab patch --state {self.state} --reboot-seconds 1"
        proc = spawn(
            [
                sys.executable,
                "-m",
                "dagcheck.cli",
                "rolling",
                "DAG1",
                "--inventory",
                str(self.inventory),
                "--reports-dir",
                str(self.folder / "reports"),
                "--target-build",
                TARGET,
                "--patch-command",
                patch,
                # the lab's member is back within about 2 s of its patch: look every 0.2 s, not every second
                "--patch-poll",
                "0.2",
                *args,
            ],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        lines, stamps = [], [time.monotonic()]
        for line in proc.stdout:  # each line as the run writes it: the gaps between them are what an operator sees
            lines.append(line)
            stamps.append(time.monotonic())
        self.longest_silence = max(b - a for a, b in zip(stamps, stamps[1:], strict=False))
        return proc.wait(), "".join(lines)

    def health(self) -> tuple[int, str]:
        proc = run(
            [
                sys.executable,
                "-m",
                "dagcheck.cli",
                "health",
                "--inventory",
                str(self.inventory),
                "--reports-dir",
                str(self.folder / "health"),
                "-q",
                "-p",
                "no:cacheprovider",
            ],
            cwd=ROOT,
            env=ENV,
            timeout=budget(200),
        )
        return proc.returncode, proc.stdout + proc.stderr

    def calls(self) -> list[dict]:
        proc = run(
            [sys.executable, "-m", "dagcheck.lab", "calls", "--state", str(self.state)], cwd=ROOT, env=ENV, timeout=budget(30)
        )
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def builds(self) -> dict[str, str]:
        org = persist.load(self.state)[0]
        return {n: ".".join(map(str, s.exsetup_version)) for n, s in org.servers.items()}


@pytest.fixture
def lab_factory(tmp_path):
    labs: list[Lab] = []

    def make(faults: list[dict] | None = None) -> Lab:
        labs.append(Lab(tmp_path / f"lab{len(labs)}", faults))
        return labs[-1]

    yield make
    for lab in labs:
        lab.stop()


# ---- pure rules ----------------------------------------------------------------------------------


def test_order_puts_the_pam_last_and_the_cheapest_first() -> None:
    members = [
        MemberFacts("mbx1", 1, 3, True),
        MemberFacts("mbx2", 2, 3, False),
        MemberFacts("mbx3", 0, 3, False),
        MemberFacts("mbx4", 2, 2, False),
    ]
    assert [m.name for m in rolling_order(members)] == ["mbx3", "mbx4", "mbx2", "mbx1"]


def test_target_gate_names_what_the_target_needs() -> None:
    target = parse_build(TARGET)
    assert target_problems(target, "mbx1", parse_build(OLD), 533320, {"mbx2": parse_build(OLD)}, 20348) == []
    # Windows Server: SE runs on 2019, 2022 and 2025, not on 2016; an unread version is said, not assumed.
    assert any(
        "mbx1 runs Windows Server 2016 (build 14393)" in p and "Windows Server 2019" in p
        for p in target_problems(target, "mbx1", parse_build(OLD), 533320, {}, 14393)
    )
    assert any(
        "Windows Server version of mbx1 could not be read" in p
        for p in target_problems(target, "mbx1", parse_build(OLD), 533320, {}, None)
    )
    # Exchange 2019 CU11 (15.2.986) is not supported on Windows Server 2022; CU12 (15.2.1118) is.
    assert supported_windows(parse_build("15.2.986.42")) == {17763: "Windows Server 2019"}
    assert 20348 in supported_windows(parse_build("15.2.1118.7"))
    problems = target_problems(target, "mbx1", parse_build(OLD), 461808, {"mbx2": parse_build("15.1.2507.72")})
    assert any(".NET Framework 4.7.2" in p and "needs 4.8" in p for p in problems)
    assert any("mbx2 runs 15.1.2507.72, which cannot share a DAG" in p for p in problems)
    assert any(
        "not a CU that still receives" in p
        for p in target_problems(parse_build("15.2.1258.12"), "mbx1", parse_build(OLD), 533320, {})
    )
    assert any("no downgrades" in p for p in target_problems(parse_build(OLD), "mbx1", target, 533320, {}))
    old = parse_build(OLD)
    assert window_parity(target, {"mbx1": target, "mbx2": old}, {"mbx1": old, "mbx2": old}) == []
    assert window_parity(target, {"mbx2": parse_build("15.2.1544.4")}, {"mbx2": parse_build(OLD)})


# ---- the plan --------------------------------------------------------------------------------


def test_dry_run_plan_lists_every_member_and_command_in_order(tmp_path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagcheck.cli",
            "rolling",
            "DAG1",
            "--reports-dir",
            str(tmp_path),
            "--target-build",
            TARGET,
            "--patch-command",
            "patch.cmd",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Dry run (nothing changes; --apply performs it)" in out
    heads = [line for line in out.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")]
    assert [h.split()[1] for h in heads] == ORDER
    assert "holds the PAM (last)" in out
    for member in ORDER:
        assert f"--phase maintenance --server {member} --apply" in out
        assert f"--phase postflight --server {member} --apply" in out
        assert f"DAGCHECK_SERVER={member} DAGCHECK_FQDN={member}.lab.contoso.test" in out
    # Issue 26: each member's Exchange commands, in order, as `dagcheck enter M` plans them, under its own heading.
    blocks = re.split(r"^\d\. ", out, flags=re.MULTILINE)[1:]
    assert [b.split()[0] for b in blocks] == ORDER
    for member, block in zip(ORDER, blocks, strict=True):
        for command in (
            f"Set-ServerComponentState -Identity {member} -Component HubTransport -State Draining -Requester Maintenance",
            f"[{member} windows] Restart-Service -Name MSExchangeTransport",
            f"Redirect-Message -Server {member} -Target ",
            f"[{member} windows] Suspend-ClusterNode -Name {member}",
            f"Set-MailboxServer -Identity {member} -DatabaseCopyActivationDisabledAndMoveNow:$true "
            "-DatabaseCopyAutoActivationPolicy Blocked",
            f"Set-ServerComponentState -Identity {member} -Component ServerWideOffline -State Inactive",
        ):
            assert command in block, f"{member}: {command!r} not in its plan:\n{block}"
        assert (
            block.index("HubTransport -State Draining")
            < block.index("Suspend-ClusterNode")
            < block.index("ServerWideOffline -State Inactive")
        )
    assert not (tmp_path / "rolling-dag1.jsonl").exists()  # a dry run journals nothing


def test_apply_without_a_patch_step_is_refused(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dagcheck.cli", "rolling", "DAG1", "--apply", "--reports-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 4
    assert "needs a patch step" in proc.stderr and "Traceback" not in proc.stderr


def test_a_patch_poll_below_a_tenth_of_a_second_is_refused(tmp_path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagcheck.cli",
            "rolling",
            "DAG1",
            "--reports-dir",
            str(tmp_path),
            "--target-build",
            TARGET,
            "--patch-command",
            "patch.cmd",
            "--patch-poll",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 4
    assert "--patch-poll 0: at least 0.1 s" in proc.stderr and "Traceback" not in proc.stderr


# ---- over the wire -----------------------------------------------------------------------------


def test_rolling_patch_of_the_dag_runs_unattended_and_the_nightly_run_is_green(lab_factory) -> None:
    lab = lab_factory()
    rc, out = lab.rolling("--apply")
    assert rc == 0, out[-4000:]
    assert "COMPLETED: every member patched and verified" in out
    # Issue 26: a change window never goes 30 s without a line (the default progress interval is 10 s): each
    # member's steps, what they wait for and the numbers they watch stream as they happen.
    assert lab.longest_silence < 30, f"the run went {lab.longest_silence:.0f} s without a line"
    for member in ORDER:
        assert re.search(rf"{member}: done in \d+ s \(the patch command exited 0: {member}: {OLD} -> {TARGET}", out), out[-4000:]
    assert "mounted databases to move away" in out, out[-4000:]  # the enter's wait, streamed from its run
    assert re.search(r"waiting for mbx\d: .*; \d+ s left", out), out[-4000:]
    assert set(lab.builds().values()) == {TARGET}
    journal = [json.loads(line) for line in (lab.folder / "reports/rolling-dag1.jsonl").read_text().splitlines()]
    assert [e["member"] for e in journal if e["event"] == "member_done"] == ORDER
    assert [e["step"] for e in journal if e["event"] == "member_step" and e["member"] == "mbx2"] == [
        "target_gate",
        "gate_and_enter",
        "patch",
        "verify_build",
        "exit_and_verify",
    ]
    rc, out = lab.health()
    assert rc == 0, out[-4000:]
    assert " failed" not in out.splitlines()[-1]


def test_member_whose_databases_refuse_to_move_stops_the_run_and_resume_starts_there(lab_factory) -> None:
    second = ORDER[1]
    lab = lab_factory([{"kind": "databases_wont_move", "server": second}])
    rc, out = lab.rolling("--apply")
    assert rc == 1, out[-4000:]
    assert f"STOPPED at {second}" in out
    assert f"{ORDER[0]}: done" in out
    stopped = next(line for line in out.splitlines() if line.startswith(f"  {second}: STOPPED"))
    assert "pre-flight gate, enter maintenance" in stopped
    assert "mounted databases to move away (still DB03" in stopped
    assert "left in maintenance or partly (" in out and "DatabaseCopyAutoActivationPolicy Blocked" in out
    for untouched in ORDER[2:]:
        assert f"{untouched}: not started (untouched)" in out
    changed = {c["server"].lower() for c in lab.calls()}
    assert changed == {ORDER[0], second}, changed  # no change was asked of the members after it
    builds = lab.builds()
    assert builds[ORDER[0]] == TARGET and all(builds[m] == OLD for m in ORDER[1:])

    rc, out = lab.rolling("--apply")  # resume: the first member is not redone; the fault still holds
    assert rc == 1
    assert "Resuming the run started" in out and f"{ORDER[0]}: done by an earlier run" in out
    assert f"STOPPED at {second}" in out
    assert {c["server"].lower() for c in lab.calls()} == {ORDER[0], second}


def test_a_patch_that_resets_extended_protection_stops_the_run_at_that_member(lab_factory) -> None:
    """The post-maintenance step compares the member with its baseline: a CU that reset a setting the
    inventory expects (Extended Protection) fails DAG-DRIFT-001 there, and no later member is started."""
    second = ORDER[1]
    lab = lab_factory([{"kind": "patch_resets_settings", "server": second}])
    rc, out = lab.rolling("--apply")
    assert rc == 1, out[-4000:]
    assert f"STOPPED at {second}" in out and f"{ORDER[0]}: done" in out
    stopped = next(line for line in out.splitlines() if line.startswith(f"  {second}: STOPPED"))
    assert "exit maintenance" in stopped or "post-maintenance" in stopped, stopped
    assert "test_expected_settings_unchanged" in out or "DAG-DRIFT-001" in out, out[-4000:]
    for untouched in ORDER[2:]:
        assert f"{untouched}: not started (untouched)" in out
    assert {c["server"].lower() for c in lab.calls()} == {ORDER[0], second}


def test_a_progress_interval_above_ten_seconds_is_refused(tmp_path) -> None:
    """Issue 26: a change window never goes 15 s without a line, so the interval cannot be set past 10 s."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagcheck.cli",
            "rolling",
            "DAG1",
            "--reports-dir",
            str(tmp_path),
            "--target-build",
            TARGET,
            "--patch-command",
            "patch.cmd",
            "--progress-every",
            "60",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 4
    assert "--progress-every 60: between 0.5 and 10 s" in proc.stderr and "Traceback" not in proc.stderr
