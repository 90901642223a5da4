"""What a resumed rolling run reads from the killed run's journal (RollingResume.unfinished, in
dagcheck/maintenance/rolling_resume.py), without a lab: the steps each member had done, and the children
(phase runs, patch commands) whose outcome was never journaled."""

from __future__ import annotations

from pathlib import Path

from dagcheck.inventory import load_inventory
from dagcheck.maintenance.rolling import Rolling
from dagcheck.maintenance.rolling_setup import PatchStep

ROOT = Path(__file__).resolve().parents[3]


def rolling(tmp_path: Path) -> Rolling:
    inventory = load_inventory(ROOT / "inventory/lab.yml")
    return Rolling(
        inventory, ROOT / "inventory/lab.yml", "DAG1", tmp_path, apply=False, patch=PatchStep("patch.cmd"), target_build=None
    )


def test_a_run_killed_during_a_patch_command_leaves_that_child_to_settle(tmp_path) -> None:
    r = rolling(tmp_path)
    j = r.journal
    j.append(event="rolling_started", dag="DAG1", order=["mbx2", "mbx3"], builds_before={})
    for step in ("target_gate", "gate_and_enter"):
        if step == "gate_and_enter":
            j.append(event="child_started", member="mbx2", step=step, base=str(tmp_path / "enter"))
            j.append(event="child_ended", member="mbx2", step=step, base=str(tmp_path / "enter"), rc=0)
        j.append(event="member_step", member="mbx2", step=step, outcome="done")
    j.append(event="child_started", member="mbx2", step="patch", base=str(tmp_path / "patch"))
    j.append(event="child_pid", member="mbx2", step="patch", pid=12345)
    # killed here: the patch command's end and the patch step were never journaled
    resume = r.unfinished()
    assert resume is not None
    assert resume["steps"] == {"mbx2": ["target_gate", "gate_and_enter"]}
    assert resume["done"] == [] and resume["patched"] == []
    assert list(resume["children"]) == [("mbx2", "patch")]  # the enter's child is accounted for by its step
    assert resume["children"][("mbx2", "patch")]["ended"] is False
    assert resume["entered_at"]["mbx2"]


def test_a_failed_step_consumes_its_child_so_the_next_run_tries_afresh(tmp_path) -> None:
    r = rolling(tmp_path)
    j = r.journal
    j.append(event="rolling_started", dag="DAG1", order=["mbx2"], builds_before={})
    j.append(event="child_started", member="mbx2", step="patch", base=str(tmp_path / "patch"))
    j.append(event="child_ended", member="mbx2", step="patch", base=str(tmp_path / "patch"), rc=1)
    j.append(event="member_step", member="mbx2", step="patch", outcome="failed")
    j.append(event="rolling_stopped", member="mbx2", step="patch", reason="exit 1")
    resume = r.unfinished()
    assert resume is not None and resume["children"] == {} and resume["steps"] == {}
    assert resume["stopped"]["member"] == "mbx2"


def test_a_completed_run_leaves_nothing_to_resume(tmp_path) -> None:
    r = rolling(tmp_path)
    r.journal.append(event="rolling_started", dag="DAG1", order=["mbx2"], builds_before={})
    r.journal.append(event="member_done", member="mbx2")
    r.journal.append(event="rolling_completed", dag="DAG1")
    assert r.unfinished() is None
