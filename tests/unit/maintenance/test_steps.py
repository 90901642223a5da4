"""Corrections of the maintenance procedure against Microsoft's (issue 23): the PAM is moved explicitly
(pausing does not move it), the exit resumes the member's suspended copies as StopDagServerMaintenance.ps1
does, and on Exchange 2016 UMCallRouter is drained and restored as Learn's procedure does."""

from __future__ import annotations

from dagcheck.lab.cmdlets import REGISTRY
from dagcheck.lab.inprocess import InProcessTransport
from dagcheck.remote.base import Command, Endpoint
from tests.unit.maintenance.test_runner import Lab

E2016 = "15.1.2507.72"  # Exchange 2016 CU23 Aug26SU


def _run(lab: Lab, server: str, cmdlet: str, **params) -> list:
    return InProcessTransport(lab.org).run(server, Endpoint.WINDOWS, Command.of(cmdlet, **params))


def test_lab_pausing_the_pam_holder_keeps_the_pam(tmp_path) -> None:
    lab = Lab(tmp_path)
    dag = lab.org.dags["dag1"]
    assert dag.primary_active_manager == "mbx1"
    _run(lab, "mbx1", "Suspend-ClusterNode", Name="mbx1")
    assert lab.org.server("mbx1").cluster_state == "Paused"
    assert dag.primary_active_manager == "mbx1"  # the default cluster group stays with its owner


def test_lab_move_cluster_group_moves_the_pam_and_refuses_a_paused_node(tmp_path) -> None:
    lab = Lab(tmp_path)
    assert REGISTRY["move-clustergroup"].changes_state
    _run(lab, "mbx1", "Suspend-ClusterNode", Name="mbx3")
    try:
        _run(lab, "mbx1", "Move-ClusterGroup", Name="Cluster Group", Node="mbx3")
    except Exception as exc:  # noqa: BLE001 - the lab's cmdlet error arrives as the transport's error
        assert "mbx3" in str(exc).lower()
    else:
        raise AssertionError("a Paused node took the cluster group")
    _run(lab, "mbx1", "Move-ClusterGroup", Name="Cluster Group", Node="mbx2")
    assert lab.org.dags["dag1"].primary_active_manager == "mbx2"


def test_dry_run_enter_of_the_pam_holder_shows_the_cluster_group_move(tmp_path) -> None:
    lab = Lab(tmp_path)
    plan = lab.transition("enter", apply=False).run()
    steps = {s.name: s.commands for s in plan.steps}
    assert steps["move_cluster_group"] == ["[mbx1 windows] Move-ClusterGroup -Name 'Cluster Group' -Node mbx2"]
    names = [s.name for s in plan.steps]
    assert names.index("suspend_cluster_node") < names.index("move_cluster_group") < names.index("server_wide_offline")
    assert not lab.changes()


def test_enter_moves_the_pam_only_when_the_member_holds_it(tmp_path) -> None:
    lab = Lab(tmp_path)
    assert lab.transition("enter").run().ok
    lab.assert_in_maintenance()
    assert any(c.startswith("[mbx1 windows] Move-ClusterGroup") for c in lab.changes())
    other = Lab(tmp_path / "other")
    other.org.dags["dag1"].primary_active_manager = "mbx3"
    plan = other.transition("enter", apply=False).run()
    assert next(s for s in plan.steps if s.name == "move_cluster_group").outcome == "already done"


def test_exit_resumes_the_copy_suspended_fault_on_the_member(tmp_path) -> None:
    lab = Lab(tmp_path, [{"kind": "copy_suspended", "database": "DB02", "server": "mbx1"}])
    assert lab.transition("enter").run().ok
    result = lab.transition("exit").run()
    assert result.ok, result.error
    assert "Resume-MailboxDatabaseCopy -Identity 'DB02\\mbx1' -Confirm:$false" in result.commands
    copy = lab.org.databases["db02"].copy_on("mbx1")
    assert copy.status == "Healthy" and not copy.activation_suspended
    lab.assert_in_service()


def test_exit_leaves_other_members_copies_and_healthy_copies_alone(tmp_path) -> None:
    lab = Lab(tmp_path, [{"kind": "copy_suspended", "database": "DB01", "server": "mbx3"}])
    assert lab.transition("enter").run().ok
    result = lab.transition("exit").run()
    assert result.ok, result.error
    assert not [c for c in result.commands if "Resume-MailboxDatabaseCopy" in c]
    assert lab.org.databases["db01"].copy_on("mbx3").status == "Suspended"


def test_um_call_router_drained_on_enter_and_restored_on_exit_on_exchange_2016(tmp_path) -> None:
    lab = Lab(tmp_path, lab__build=E2016)
    entered = lab.transition("enter").run()
    assert entered.ok, entered.error
    assert (
        "Set-ServerComponentState -Identity mbx1 -Component UMCallRouter -State Draining -Requester Maintenance"
        in entered.commands
    )
    assert lab.org.server("mbx1").own_state("UMCallRouter") == "Draining"
    left = lab.transition("exit").run()
    assert left.ok, left.error
    assert lab.org.server("mbx1").component_state("UMCallRouter") == "Active"
    lab.assert_in_service()


def test_no_um_call_router_step_acts_on_exchange_se(tmp_path) -> None:
    lab = Lab(tmp_path)
    plan = lab.transition("enter", apply=False).run()
    assert not [c for c in plan.commands if "UMCallRouter" in c]
