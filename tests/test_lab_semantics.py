"""The lab's state semantics, through the in-process transport (still CLIXML round-tripped)."""

from __future__ import annotations

import pytest

from dagcheck import model
from dagcheck.errors import CmdletFailed
from dagcheck.inventory import load_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.faults import apply_fault
from dagcheck.lab.inprocess import InProcessTransport
from dagcheck.lab.settings import Fault
from dagcheck.remote.base import Command, Endpoint
from tests.conftest import ROOT


@pytest.fixture
def lab():
    org = build_organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    return org, InProcessTransport(org)


def _components(t, server):
    objs = t.run(server, Endpoint.EXCHANGE, Command.of("Get-ServerComponentState", Identity=server))
    return {c.component: c for c in (model.parse_component_state(o) for o in objs)}


def test_server_wide_offline_turns_every_component_but_monitoring_inactive(lab) -> None:
    _, t = lab
    t.run("mbx1", Endpoint.EXCHANGE, Command.of("Set-ServerComponentState", Identity="mbx1",
                                                Component="ServerWideOffline", State="Inactive", Requester="Maintenance"))
    states = _components(t, "mbx1")
    assert states["ServerWideOffline"].state == "Inactive"
    assert states["HubTransport"].state == "Inactive" and states["OwaProxy"].state == "Inactive"
    assert states["Monitoring"].state == "Active" and states["RecoveryActionsEnabled"].state == "Active"
    assert states["ServerWideOffline"].requesters("Inactive") == ("Maintenance",)


def test_any_requester_inactive_wins(lab) -> None:
    _, t = lab
    for requester, state in (("HealthApi", "Inactive"), ("Maintenance", "Active")):
        t.run("mbx2", Endpoint.EXCHANGE, Command.of("Set-ServerComponentState", Identity="mbx2",
                                                    Component="HubTransport", State=state, Requester=requester))
    hub = _components(t, "mbx2")["HubTransport"]
    assert hub.state == "Inactive" and hub.requesters("Inactive") == ("HealthApi",)


def test_move_now_moves_actives_to_a_healthy_unblocked_copy(lab) -> None:
    org, t = lab
    t.run("mbx2", Endpoint.EXCHANGE, Command.of("Set-MailboxServer", Identity="mbx2", DatabaseCopyAutoActivationPolicy="Blocked"))
    t.run("mbx1", Endpoint.EXCHANGE, Command.of("Set-MailboxServer", Identity="mbx1", DatabaseCopyAutoActivationPolicy="Blocked",
                                                DatabaseCopyActivationDisabledAndMoveNow=True))
    # DB01 (mbx1, mbx2, mbx3): mbx2 is Blocked, so it goes to mbx3.
    assert org.databases["db01"].active_server == "mbx3"
    copies = [model.parse_copy_status(o) for o in t.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-MailboxDatabaseCopyStatus", Server="mbx1"))]
    assert all(not c.active and c.status == "Healthy" for c in copies)


def test_invalid_enum_value_is_refused_like_parameter_binding(lab) -> None:
    _, t = lab
    with pytest.raises(CmdletFailed, match="Unable to match the identifier name Sometimes"):
        t.run("mbx1", Endpoint.EXCHANGE, Command.of("Set-MailboxServer", Identity="mbx1", DatabaseCopyAutoActivationPolicy="Sometimes"))


def test_suspending_the_pam_keeps_the_pam_until_the_cluster_group_moves(lab) -> None:
    """Pausing does not move the PAM (it owns the default cluster group, which stays); Move-ClusterGroup does
    (issue 23: this test used to expect the pause to move it)."""
    org, t = lab
    assert org.dags["dag1"].primary_active_manager == "mbx1"
    t.run("mbx1", Endpoint.WINDOWS, Command.of("Suspend-ClusterNode", Name="mbx1"))

    def pam() -> str:
        return str(model.prop(t.run("mbx2", Endpoint.EXCHANGE, Command.of(
            "Get-DatabaseAvailabilityGroup", Identity="DAG1", Status=True))[0], "PrimaryActiveManager"))

    assert pam() == "MBX1"
    nodes = {str(n.Name): str(n.State) for n in t.run("mbx2", Endpoint.WINDOWS, Command.of("Get-ClusterNode"))}
    assert nodes["MBX1"] == "Paused"
    t.run("mbx1", Endpoint.WINDOWS, Command.of("Move-ClusterGroup", Name="Cluster Group", Node="mbx2"))
    assert pam() == "MBX2"


def test_transport_restart_makes_get_queue_fail_until_transport_is_back(lab) -> None:
    org, t = lab
    t.run("mbx1", Endpoint.WINDOWS, Command.of("Restart-Service", Name="MSExchangeTransport"))
    with pytest.raises(CmdletFailed, match="Failed to connect to the Microsoft Exchange Transport service"):
        t.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-Queue", Server="mbx1"))
    org.clock.advance(60)
    assert t.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-Queue", Server="mbx1"))


def _queue_total(t, server: str) -> int:
    queues = [model.parse_queue(o, server) for o in t.run(server, Endpoint.EXCHANGE, Command.of("Get-Queue", Server=server))]
    return sum(q.message_count for q in queues if q.kind not in ("Poison", "Shadow"))


def test_time_passes_with_each_call_and_a_backlog_drains() -> None:
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    org = build_organization(inventory)
    apply_fault(org, Fault("mail_backlog", {"server": "mbx1", "count": 50}))
    t = InProcessTransport(org)
    start = org.now()
    counts = [_queue_total(t, "mbx1") for _ in range(6)]
    assert counts[0] < 50 and counts == sorted(counts, reverse=True) and counts[-1] == 0
    assert (org.now() - start).total_seconds() == 6 * 5


def test_redirect_moves_mail_but_not_a_stuck_queue_and_then_clears_shadows(lab) -> None:
    org, t = lab
    apply_fault(org, Fault("mail_backlog", {"server": "mbx1", "count": 500}))
    apply_fault(org, Fault("shadow_queue", {"server": "mbx1", "value": "mbx2", "count": 4}))
    t.run("mbx1", Endpoint.EXCHANGE, Command.of("Redirect-Message", Server="mbx1", Target="mbx2.lab.contoso.test"))
    assert _queue_total(t, "mbx1") < 500
    for _ in range(10):
        _queue_total(t, "mbx1")
    assert _queue_total(t, "mbx1") == 0
    shadows = [model.parse_queue(o, "mbx2") for o in t.run("mbx2", Endpoint.EXCHANGE, Command.of("Get-Queue", Server="mbx2"))]
    assert [q.message_count for q in shadows if q.kind == "Shadow"] == [0]
    org2 = build_organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    apply_fault(org2, Fault("stuck_queue", {"server": "mbx3", "count": 25}))
    t2 = InProcessTransport(org2)
    t2.run("mbx3", Endpoint.EXCHANGE, Command.of("Redirect-Message", Server="mbx3", Target="mbx4"))
    assert [_queue_total(t2, "mbx3") for _ in range(5)] == [25] * 5
