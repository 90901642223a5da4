"""The children of a rolling run (dagcheck/maintenance/child.py): started in a session of their own, their
end recorded beside their log, waited for by a run resumed after a kill, never run twice.

Real processes, no lab: each test waits on a condition (a file the child writes, its recorded end),
never on a fixed sleep.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dagcheck.maintenance.child import NEVER_STARTED, ChildFiles, alive, launch, supervise
from tests import processes
from tests.processes import budget

BUDGET = budget(100)  # a hang detector, scaled by the machine's load (tests/processes.py)

pytestmark = pytest.mark.skipif(os.name == "nt", reason="process groups and /proc are POSIX here")


def until(what: str, condition: Callable[[], bool]) -> None:
    processes.until(what, condition, 100)


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "child_script.py"
    path.write_text("import os, sys, time\nfrom pathlib import Path\n" + body, encoding="utf-8")
    return [sys.executable, str(path)]


def test_a_child_streams_its_lines_and_its_exit_code_is_recorded(tmp_path) -> None:
    files = ChildFiles(tmp_path / "c1")
    proc = launch(files, script(tmp_path, "print('one', flush=True)\nprint('two')\nsys.exit(3)"), dict(os.environ))
    lines: list[str] = []
    ended = supervise(files, proc, None, lines.append, lambda s: None, heartbeat=60)
    assert ended.rc == 3 and not ended.timed_out
    assert lines == ["one", "two"]
    assert files.rc() == 3 and files.owner() and files.owner()["pid"] == proc.pid  # type: ignore[index]


def test_a_child_runs_in_a_session_of_its_own(tmp_path) -> None:
    files = ChildFiles(tmp_path / "c2")
    release = tmp_path / "release"
    argv = script(
        tmp_path, f"print(os.getsid(0), os.getpgid(0), flush=True)\nwhile not Path({str(release)!r}).exists(): time.sleep(0.02)"
    )
    proc = launch(files, argv, dict(os.environ))
    until("the child's first line", lambda: files.log.exists() and files.log.read_text().strip() != "")
    sid, pgid = map(int, files.log.read_text().split())
    assert sid == pgid == proc.pid != os.getsid(0)  # a Ctrl-C or a closed terminal of the run never reaches it
    release.touch()
    assert supervise(files, proc, None, lambda line: None, lambda s: None, heartbeat=60).rc == 0


def test_a_resumed_run_waits_for_the_killed_runs_child_and_takes_its_exit_code(tmp_path) -> None:
    """The run that started the child is gone: the resumed run knows the child only by its files."""
    files = ChildFiles(tmp_path / "c3")
    release = tmp_path / "release"
    proc = launch(
        files,
        script(tmp_path, f"while not Path({str(release)!r}).exists(): time.sleep(0.02)\nprint('installed')\nsys.exit(0)"),
        dict(os.environ),
    )
    until("the child's pid file", lambda: files.owner() is not None)
    assert not files.claim(), "a started child is never claimed for a second start"
    quiet: list[float] = []

    def on_quiet(seconds: float) -> None:  # the resumed run's heartbeat: the moment to let the child finish
        quiet.append(seconds)
        release.touch()

    lines: list[str] = []
    ended = supervise(files, None, None, lines.append, on_quiet, heartbeat=0.2)
    assert ended.rc == 0 and lines == ["installed"] and quiet
    proc.wait(BUDGET)


def test_a_child_that_never_started_is_claimed_and_then_never_runs(tmp_path) -> None:
    files = ChildFiles(tmp_path / "c4")
    marker = tmp_path / "ran"
    assert files.claim()  # the resumed run decides first: the child of the killed run must not start now
    proc = launch(files, script(tmp_path, f"Path({str(marker)!r}).touch()"), dict(os.environ))
    assert proc.wait(BUDGET) == NEVER_STARTED
    assert not marker.exists() and files.rc() is None


def test_a_child_killed_without_a_status_is_unknown_not_success(tmp_path) -> None:
    files = ChildFiles(tmp_path / "c5")
    proc = launch(files, script(tmp_path, "time.sleep(600)"), dict(os.environ))
    until("the child's pid file", lambda: files.owner() is not None)
    os.kill(proc.pid, 9)  # the wrapper itself, as an operator's kill -9 would
    proc.wait(BUDGET)
    ended = supervise(files, None, None, lambda line: None, lambda s: None, heartbeat=60)
    assert ended.rc is None and not ended.timed_out
    os.killpg(proc.pid, 9)  # the orphaned sleep


def test_a_child_past_its_timeout_is_stopped_with_its_whole_group(tmp_path) -> None:
    files = ChildFiles(tmp_path / "c6")
    grandchild = tmp_path / "grandchild"
    argv = script(
        tmp_path,
        "import subprocess\n"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"Path({str(grandchild)!r}).write_text(str(p.pid))\np.wait()",
    )
    proc = launch(files, argv, dict(os.environ))
    until("the grandchild", lambda: grandchild.exists() and grandchild.read_text() != "")
    ended = supervise(files, proc, 0.5, lambda line: None, lambda s: None, heartbeat=60)
    assert ended.timed_out
    pid = int(grandchild.read_text())
    until("the grandchild's end", lambda: not alive(pid))
