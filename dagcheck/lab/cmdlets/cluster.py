"""The FailoverClusters cmdlets of the Windows endpoint: Get-ClusterNode, Suspend-ClusterNode, Resume-ClusterNode."""

from __future__ import annotations

from typing import Any

from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import (
    WINDOWS,
    Call,
    cmdlet,
    lookup_server,
)
from dagcheck.lab.errors import LabCmdletError
from dagcheck.lab.state import LabServer, Organization


def _cluster_node(org: Organization, s: LabServer, dag_name: str) -> Any:
    return ps.obj(
        ["Microsoft.FailoverClusters.PowerShell.ClusterNode", "Microsoft.FailoverClusters.PowerShell.ClusterObject", "System.Object"],
        {
            "Name": s.name.upper(),
            "State": ps.enum("Microsoft.FailoverClusters.PowerShell.ClusterNodeState", s.cluster_state),
            "Id": str(sorted(org.servers).index(s.name.lower()) + 1),
            "NodeWeight": 1,
            "DynamicWeight": 0 if s.cluster_state != "Up" else 1,
            "Cluster": dag_name,
            "DrainStatus": "NotInitiated",
        },
        to_string=s.name.upper(),
    )


def _cluster_members(call: Call) -> tuple[Any, list[LabServer]]:
    dag = call.org.dag_of(call.server)
    if dag is None:
        raise LabCmdletError("The cluster service is not running on this computer.", "ConnectionError",
                             "ClusterCmdletNoCluster,Microsoft.FailoverClusters.PowerShell.GetNodeCommand",
                             "System.Exception")
    if call.server.services.get("ClusSvc") != "Running":
        raise LabCmdletError(f"Cluster service on node '{call.server.name.upper()}' is not running.", "ConnectionError",
                             "ClusterCmdletNoCluster,Microsoft.FailoverClusters.PowerShell.GetNodeCommand",
                             "System.Exception")
    return dag, [call.org.server(m) for m in dag.members]


@cmdlet("Get-ClusterNode", "Name", "Cluster", "InputObject", endpoint=WINDOWS)
def get_cluster_node(call: Call) -> list[Any]:
    dag, members = _cluster_members(call)
    if call.get("Name"):
        members = [m for m in members if m.name.lower() == str(call.get("Name")).lower()]
        if not members:
            raise LabCmdletError(f"The cluster node '{call.get('Name')}' was not found.", "ObjectNotFound",
                                 "ClusterObjectNotFound,Microsoft.FailoverClusters.PowerShell.GetNodeCommand",
                                 "System.Exception")
    return [_cluster_node(call.org, m, dag.name) for m in members]


def _node_param(call: Call) -> LabServer:
    name = call.get("Name") or call.server.name
    return lookup_server(call, name)


@cmdlet("Suspend-ClusterNode", "Name", "Cluster", "Drain", "ForceDrain", "Wait", "TargetNode", endpoint=WINDOWS, changes_state=True)
def suspend_cluster_node(call: Call) -> list[Any]:
    dag, _ = _cluster_members(call)
    node = _node_param(call)
    if node.cluster_state == "Down":
        raise LabCmdletError(f"The node '{node.name.upper()}' is down.", "InvalidOperation",
                             "Suspend-ClusterNode,Microsoft.FailoverClusters.PowerShell.SuspendClusterNodeCommand",
                             "System.Exception")
    node.cluster_state = "Paused"
    if dag.primary_active_manager.lower() == node.name.lower():
        # The PAM role (the cluster group owner) moves to another node that is Up.
        nxt = next((m for m in dag.members if call.org.server(m).cluster_state == "Up"), None)
        if nxt:
            dag.primary_active_manager = nxt
    return [_cluster_node(call.org, node, dag.name)]


@cmdlet("Resume-ClusterNode", "Name", "Cluster", "Failback", endpoint=WINDOWS, changes_state=True)
def resume_cluster_node(call: Call) -> list[Any]:
    dag, _ = _cluster_members(call)
    node = _node_param(call)
    if node.cluster_state == "Paused":
        node.cluster_state = "Up"
    return [_cluster_node(call.org, node, dag.name)]


