"""The DAG-wide lease, same-server runs and resume after kill -9, proven as separate processes against one
persistent lab (`python -m dagcheck.lab serve --state FILE --write-inventory PATH`), loopback only.

The lab's saved state file is the ground truth the assertions read (it is rewritten within 50 ms of
every call). DAGCHECK_LEASE_REPS (default 3) sets how many times the two-operator race is run; the
issue asks for 20: `DAGCHECK_LEASE_REPS=20 pytest tests/scenarios/test_dag_lease.py -k race`.
DAGCHECK_KILL_STEPS=all runs the kill -9 proof after every step (default: a spread of steps).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dagcheck.lab import persist
from dagcheck.lab.objects import DEFAULT_INACTIVE
from dagcheck.lab.state import Organization
from dagcheck.maintenance.steps import enter_steps, exit_steps
from tests.processes import budget, serve_lab, spawn, stop_lab, until

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "lease-test-only"
ENV = {**os.environ, "DAGCHECK_LAB_USERNAME": "lab\\dagcheck", "DAGCHECK_LAB_PASSWORD": PASSWORD}
RUN_TIMEOUT = 120


def _file_identity(path: Path) -> tuple[int, int] | None:
    """Which write of the file this is: the lab replaces it whole (a new inode, a new mtime) on every save."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


class LabProcess:
    """One `python -m dagcheck.lab serve --state` process; restart() keeps the state file."""

    def __init__(self, folder: Path, source: Path = ROOT / "inventory/lab.yml") -> None:
        self.folder = folder
        self.source = source  # the inventory the lab builds its organisation (and faults) from
        self.state = folder / "lab.json"
        self.inventory = folder / "inventory.yml"
        self.proc: subprocess.Popen | None = None

    def start(self) -> LabProcess:
        self.inventory.unlink(missing_ok=True)
        self.proc = serve_lab(self.source, self.state, self.inventory, ENV, ROOT)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_lab(self.proc)
        self.proc = None

    def fresh(self) -> LabProcess:
        self.stop()
        self.state.unlink(missing_ok=True)
        return self.start()

    def save(self, dest: Path) -> None:
        """Keep the stopped lab's state file and the runs' reports folder (journals, baselines) in dest."""
        assert self.proc is None, "the lab saves its state when it stops: stop it first"
        shutil.copy2(self.state, dest / self.state.name)
        shutil.copytree(self.folder / "reports", dest / "reports", dirs_exist_ok=True)

    def restore(self, saved: Path) -> LabProcess:
        """Restart the lab from a state saved by save(), with the reports folder as it was then."""
        self.stop()
        shutil.rmtree(self.folder / "reports", ignore_errors=True)
        shutil.copytree(saved / "reports", self.folder / "reports")
        shutil.copy2(saved / self.state.name, self.state)
        return self.start()

    def org(self) -> Organization:
        """The organisation as the lab holds it now: a running lab is asked to save (SIGUSR1), and the state file
        is read once a save made after the asking has replaced it (the runs that changed it have ended)."""
        if self.proc is not None and self.proc.poll() is None:
            before = _file_identity(self.state)
            proc = self.proc
            proc.send_signal(signal.SIGUSR1)

            def saved_or_ended() -> bool:
                return proc.poll() is not None or _file_identity(self.state) != before

            until("save of the lab's state on SIGUSR1", saved_or_ended, 10)
            assert proc.poll() is None, f"the lab ended on SIGUSR1 (rc {proc.returncode}) instead of saving its state"
        return persist.load(self.state)[0]

    def dagcheck(self, *args: str, reports: str = "reports", env: dict | None = None) -> subprocess.Popen:
        return spawn(
            [
                sys.executable,
                "-m",
                "pytest",
                "checks",
                "--inventory",
                str(self.inventory),
                "-q",
                "-p",
                "no:cacheprovider",
                "--reports-dir",
                str(self.folder / reports),
                *args,
            ],
            cwd=ROOT,
            env={**ENV, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=budget(RUN_TIMEOUT))
    return proc.returncode, out


def signs(org: Organization, name: str) -> list[str]:
    s = org.server(name)
    out = [f"{c} {s.component_state(c)}" for c in s.components if c not in DEFAULT_INACTIVE and s.component_state(c) != "Active"]
    if s.cluster_state != "Up":
        out.append(f"node {s.cluster_state}")
    if s.activation_policy != "Unrestricted" or s.move_now:
        out.append(f"activation {s.activation_policy}, MoveNow {s.move_now}")
    return out


def assert_full_service(org: Organization, name: str) -> None:
    assert not signs(org, name), (name, signs(org, name))
    for db in org.databases.values():
        preferred = min(db.copies, key=lambda c: c.preference)
        assert db.active_server.lower() == preferred.server.lower(), (db.name, db.active_server)
        assert db.copy_on(db.active_server).status == "Mounted"
    s = org.server(name)
    assert all(q.message_count == 0 for q in s.queues if q.queue_type not in ("Poison", "Shadow")), "queues flowing"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = LabProcess(tmp_path_factory.mktemp("persistent-lab")).start()
    yield lab
    lab.stop()


@pytest.fixture(scope="module")
def entered(lab, tmp_path_factory) -> Path:
    """mbx1 entered into maintenance by a real run, then the lab stopped (it saves its state) and its state file
    and reports folder kept: the tests that start from there restore it instead of entering again each time."""
    saved = tmp_path_factory.mktemp("entered")
    lab.fresh()
    shutil.rmtree(lab.folder / "reports", ignore_errors=True)
    rc, out = finish(lab.dagcheck("--phase", "maintenance", "--server", "mbx1", "--target", "mbx2", "--apply"))
    assert rc == 0, out[-3000:]
    lab.stop()
    lab.save(saved)
    lab.start()
    return saved


def test_state_survives_a_restart_and_the_inventory_holds_no_password(lab, entered) -> None:
    lab.restore(entered)  # a new lab process on the state file the one that served the enter run saved
    assert signs(lab.org(), "mbx1"), "mbx1 is still in maintenance after the lab's restart"
    assert PASSWORD not in lab.inventory.read_text() and PASSWORD not in lab.state.read_text()
    rc, out = finish(lab.dagcheck("--phase", "postflight", "--server", "mbx1", "--apply"))
    assert rc == 0, out[-3000:]
    assert_full_service(lab.org(), "mbx1")


def test_two_operators_race_never_two_members_in_maintenance(lab) -> None:
    reps = int(os.environ.get("DAGCHECK_LEASE_REPS", "3"))
    winners: dict[str, int] = {}
    for rep in range(reps):
        lab.fresh()
        a = lab.dagcheck("--phase", "maintenance", "--server", "mbx1", "--target", "mbx2", "--apply", reports=f"host-a-{rep}")
        b = lab.dagcheck("--phase", "maintenance", "--server", "mbx3", "--target", "mbx4", "--apply", reports=f"host-b-{rep}")
        (rc_a, out_a), (rc_b, out_b) = finish(a), finish(b)
        org = lab.org()
        busy = {m: signs(org, m) for m in ("mbx1", "mbx2", "mbx3", "mbx4") if signs(org, m)}
        assert len(busy) == 1, (rep, busy, out_a[-1500:], out_b[-1500:])
        winner = next(iter(busy))
        winners[winner] = winners.get(winner, 0) + 1
        loser_out = out_b if winner == "mbx1" else out_a
        assert sorted((rc_a, rc_b)) == [0, 1], (rep, rc_a, rc_b)  # the loser's refusal is exit 1
        assert "mbx1" in loser_out and "mbx3" in loser_out and "since" in loser_out, loser_out[-2000:]
    print(f"{reps} repetitions, winners: {winners}")


def test_two_runs_on_the_same_server_one_refuses(lab) -> None:
    lab.fresh()
    runs = [lab.dagcheck("--phase", "maintenance", "--server", "mbx1", "--target", "mbx2", "--apply") for _ in range(2)]
    results = [finish(p) for p in runs]
    assert sorted(rc == 0 for rc, _ in results) == [False, True], [out[-1500:] for _, out in results]
    refused = next(out for rc, out in results if rc != 0)
    assert "refused" in refused.lower() and ("another dagcheck run" in refused or "another run since" in refused), refused[-2000:]
    # A second host (another reports folder) after the first has claimed: refused by the claim's timestamp.
    rc, out = finish(
        lab.dagcheck("--phase", "maintenance", "--server", "mbx1", "--target", "mbx2", "--apply", reports="other-host")
    )
    assert rc == 1 and "already being entered into maintenance by another run since" in out, out[-2000:]
    assert "--phase postflight --server mbx1 --apply" in out


ENTER = [s.name for s in enter_steps(False)]
EXIT = [s.name for s in exit_steps(False)]
SPREAD = {
    "drain_transport",
    "wait_queues_empty",
    "block_activation",
    "server_wide_offline",
    "server_wide_online",
    "restore_activation_policy",
    "restart_transport_exit",
}
KILL_POINTS = [("enter", s) for s in ENTER] + [("exit", s) for s in EXIT]
if os.environ.get("DAGCHECK_KILL_STEPS") != "all":
    KILL_POINTS = [(d, s) for d, s in KILL_POINTS if s in SPREAD]


@pytest.mark.parametrize("direction,step", KILL_POINTS, ids=[f"{d}-{s}" for d, s in KILL_POINTS])
def test_kill_9_after_a_step_then_resume_and_roll_back(lab, request, direction, step) -> None:
    kill = {"DAGCHECK_TEST_KILL_AFTER_STEP": step}
    enter = ("--phase", "maintenance", "--server", "mbx1", "--target", "mbx2", "--apply")
    leave = ("--phase", "postflight", "--server", "mbx1", "--apply")
    if direction == "exit":
        lab.restore(request.getfixturevalue("entered"))  # mbx1 entered by a completed run (its journal included)
        assert signs(lab.org(), "mbx1")
    else:
        lab.fresh()
    rc, out = finish(lab.dagcheck(*(enter if direction == "enter" else leave), env=kill))
    assert rc == -signal.SIGKILL, (rc, out[-2000:])
    if direction == "enter":
        rc, out = finish(lab.dagcheck(*enter))  # resume: completes and verifies
        assert rc == 0, out[-3000:]
        assert "did not finish (last step done: " in out, out[-3000:]  # it says where it stands
    rc, out = finish(lab.dagcheck(*leave))  # roll back / finish leaving
    assert rc == 0, out[-3000:]
    assert_full_service(lab.org(), "mbx1")
