"""A rolling run killed with kill -9 resumes at every kill point (issue 24, item 1), over the wire against a
persistent lab, and its patch command never runs twice or beside itself.

One rolling run of the 4-member DAG is killed three times, each time at another member and another kill
point, and started again with the same command each time:

1. during the first member's enter step (its enter transition has made its first change);
2. during the second member's patch command (the probe below holds it until the test releases it);
3. during the third member's reboot wait (the lab's patch restarts it for several seconds).

The patch command is a probe around the lab's own patch: it journals every start and end to a file (so
the test counts invocations and sees two running at once) and can be held on a release file. The test
waits on conditions (journal entries, the probe's files, the run's output), never on fixed sleeps; the
budgets are generous, for a loaded machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.processes import budget
from tests.scenarios.test_rolling_patch import ENV, ORDER, ROOT, TARGET, Lab

BUDGET = budget(300)  # seconds any one condition may take: a hang detector scaled by load (tests/processes.py)
PROBE = r"""
import os, subprocess, sys, time
from pathlib import Path
probe, state = Path(sys.argv[1]), sys.argv[2]
server = os.environ["DAGCHECK_SERVER"]
log = lambda line: open(probe / "invocations", "a").write(line + "\n")
try:
    os.close(os.open(probe / "running", os.O_CREAT | os.O_EXCL))
except FileExistsError:
    log(f"CONCURRENT {server} {os.getpid()}")
log(f"start {server} {os.getpid()}")
if (probe / f"hold-{server}").exists():
    (probe / f"held-{server}").write_text(str(os.getpid()))
    while not (probe / f"release-{server}").exists():
        time.sleep(0.05)
reboot = (probe / f"reboot-{server}").read_text().strip() if (probe / f"reboot-{server}").exists() else "1"
rc = subprocess.call([sys.executable, "-m", "dagcheck.lab", "patch", "--state", state, "--reboot-seconds", reboot])
os.unlink(probe / "running")
log(f"end {server} {os.getpid()} {rc}")
sys.exit(rc)
"""


class Run:
    """One `dagcheck rolling DAG1 --apply` process, its output in a file the test reads as it grows."""

    def __init__(self, lab: Lab, probe: Path, n: int) -> None:
        self.out = lab.folder / f"rolling-{n}.out"
        script = probe / "patch_probe.py"
        patch = f"{sys.executable} {script} {probe} {lab.state}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagcheck.cli",
                "rolling",
                "DAG1",
                "--inventory",
                str(lab.inventory),
                "--reports-dir",
                str(lab.folder / "reports"),
                "--target-build",
                TARGET,
                "--patch-command",
                patch,
                "--patch-poll",
                "0.2",
                "--apply",
            ],
            cwd=ROOT,
            env=ENV,
            stdout=self.out.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def until(self, what: str, condition: Callable[[], bool]) -> None:
        """Wait until the condition holds; the run ending first, or the budget, fails with its output."""
        deadline = time.monotonic() + BUDGET
        while not condition():
            assert self.proc.poll() is None, f"the run ended (rc {self.proc.returncode}) before {what}:\n{self.output()[-4000:]}"
            assert time.monotonic() < deadline, f"no {what} within {BUDGET:g} s:\n{self.output()[-4000:]}"
            time.sleep(0.1)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)  # the run's own process only: its children are not signalled
        self.proc.wait(budget(20))

    def finish(self) -> tuple[int, str]:
        return self.proc.wait(BUDGET), self.output()


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def step_done(journal: Path, step: str) -> bool:
    try:
        lines = journal.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    entries = [json.loads(line) for line in lines if line.endswith("}")]
    return any(e.get("event") == "step" and e.get("step") == step and e.get("outcome") == "done" for e in entries)


@pytest.fixture
def runs(tmp_path):
    started: list[Run] = []
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "patch_probe.py").write_text(PROBE, encoding="utf-8")
    lab = Lab(tmp_path / "lab")

    def start() -> Run:
        started.append(Run(lab, probe, len(started)))
        return started[-1]

    yield lab, probe, start
    for run in started:  # a failed test leaves no run behind (nor a held probe)
        (probe / f"release-{ORDER[1]}").touch()
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait(60)
    lab.stop()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see which processes still run")
def test_kill_9_at_every_kill_point_of_a_rolling_run_then_resume_patches_each_member_once(runs) -> None:
    lab, probe, start = runs
    first, second, third = ORDER[:3]
    (probe / f"hold-{second}").touch()
    (probe / f"reboot-{third}").write_text("8")  # a reboot long enough to be killed in

    # 1. during the first member's enter step: its transition has made its first change
    run = start()
    run.until(f"{first}'s first enter step", lambda: step_done(lab.folder / f"reports/journal-{first}.jsonl", "drain_transport"))
    run.kill9()

    # 2. during the second member's patch command (held by the probe)
    run = start()
    run.until(f"{second}'s patch command", lambda: (probe / f"held-{second}").exists())
    run.kill9()
    held = int((probe / f"held-{second}").read_text())
    assert alive(held), "the probe stands for an installer: it is still running after its run was killed"

    # The resumed run waits for the killed run's patch command instead of starting a second one beside it.
    run = start()
    run.until(
        "the resumed run waiting for the earlier patch command",
        lambda: f"waiting for the patch command of {second} started by the earlier run" in run.output(),
    )
    (probe / f"release-{second}").touch()

    # 3. during the third member's reboot wait
    run.until(f"{third}'s reboot wait", lambda: f"waiting for {third}: not answering" in run.output())
    run.kill9()

    rc, out = start().finish()
    assert rc == 0, out[-4000:]
    assert "COMPLETED: every member patched and verified" in out, out[-4000:]
    for member in ORDER:
        assert f"{member}: done" in out, out[-4000:]

    invocations = (probe / "invocations").read_text().splitlines()
    assert not [line for line in invocations if line.startswith("CONCURRENT")], invocations
    starts = [line.split()[1] for line in invocations if line.startswith("start ")]
    assert sorted(starts) == sorted(ORDER), f"each member patched exactly once: {invocations}"
    assert all(line.endswith(" 0") for line in invocations if line.startswith("end ")), invocations
    pids = [int(line.split()[2]) for line in invocations if line.startswith(("start ", "end "))]
    assert not [pid for pid in pids if alive(pid)], "a patch command outlived the rolling run"
    assert set(lab.builds().values()) == {TARGET}

    rc, out = lab.health()
    assert rc == 0, out[-4000:]
