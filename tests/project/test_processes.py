"""Every lab a test starts dies with the test (tests/processes.py): killed, stopped or timed out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.processes import budget, kill_all, spawn


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie nobody has reaped yet is gone for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _wait_gone(pid: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + budget(seconds)
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


def _suite_holding_a_persistent_lab(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """A pytest session whose test starts the persistent lab of test_lease.py and then waits: returns the
    session and the lab's pid once the lab serves."""
    test = tmp_path / "test_holds_a_lab.py"
    test.write_text(
        textwrap.dedent(f"""
        import time
        from pathlib import Path
        from tests.scenarios.test_dag_lease import LabProcess

        def test_holds_a_lab():
            lab = LabProcess(Path({str(tmp_path)!r})).start()
            print("LAB-PID", lab.proc.pid, flush=True)
            time.sleep(3600)
        """),
        encoding="utf-8",
    )
    session = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test),
            "-s",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])},
    )
    assert session.stdout is not None
    for line in session.stdout:
        if line.startswith("LAB-PID"):
            return session, int(line.split()[1])
    raise AssertionError(f"the session never started its lab: rc {session.wait()}")


def test_a_lab_dies_with_a_test_process_killed_with_sigkill(tmp_path) -> None:
    session, lab_pid = _suite_holding_a_persistent_lab(tmp_path)
    assert _alive(lab_pid)
    session.kill()  # no cleanup runs in the test process: the kernel tells the lab (PR_SET_PDEATHSIG)
    session.wait()
    assert _wait_gone(lab_pid), "the persistent lab outlived the killed test process"


def test_a_lab_dies_with_a_suite_stopped_by_sigterm(tmp_path) -> None:
    session, lab_pid = _suite_holding_a_persistent_lab(tmp_path)
    session.send_signal(signal.SIGTERM)  # as CI's timeout or a stopped xdist controller does
    session.wait()
    assert _wait_gone(lab_pid), "the persistent lab outlived the stopped suite"


def test_kill_all_ends_a_spawned_process_with_its_children() -> None:
    parent = spawn(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)']); "
            "print(p.pid, flush=True); time.sleep(3600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert kill_all() >= 1
    assert _wait_gone(parent.pid) and _wait_gone(child)
