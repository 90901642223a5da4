"""The lab's failover cluster: nodes paused and the cluster group (with the PAM) moved."""

from __future__ import annotations

import pytest

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.values import prop
from tests.lab import inprocess


@pytest.fixture
def lab():
    return inprocess.lab()


def test_suspending_the_pam_keeps_the_pam_until_the_cluster_group_moves(lab) -> None:
    """Pausing does not move the PAM (it owns the default cluster group, which stays); Move-ClusterGroup does
    (issue 23: this test used to expect the pause to move it)."""
    org, t = lab
    assert org.dags["dag1"].primary_active_manager == "mbx1"
    t.run("mbx1", Endpoint.WINDOWS, Command.of("Suspend-ClusterNode", Name="mbx1"))

    def pam() -> str:
        return str(
            prop(
                t.run("mbx2", Endpoint.EXCHANGE, Command.of("Get-DatabaseAvailabilityGroup", Identity="DAG1", Status=True))[0],
                "PrimaryActiveManager",
            )
        )

    assert pam() == "MBX1"
    nodes = {str(n.Name): str(n.State) for n in t.run("mbx2", Endpoint.WINDOWS, Command.of("Get-ClusterNode"))}
    assert nodes["MBX1"] == "Paused"
    t.run("mbx1", Endpoint.WINDOWS, Command.of("Move-ClusterGroup", Name="Cluster Group", Node="mbx2"))
    assert pam() == "MBX2"
