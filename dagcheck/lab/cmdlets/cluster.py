"""The FailoverClusters cmdlets of the Windows endpoint: Get-ClusterNode, Suspend-ClusterNode, Resume-ClusterNode,
Move-ClusterGroup.

The Primary Active Manager is whichever node owns the cluster's default group ("Cluster Group"); pausing a
node does not move that group (Suspend-ClusterNode without -Drain moves nothing), it only keeps the node from
taking it. The group moves when someone moves it (Move-ClusterGroup, as StartDagServerMaintenance.ps1 does
through DagTaskHelperPublic.MovePrimaryActiveManagerRole) or when its owner goes Down. Source: Tim McMichael
(Microsoft), "Exchange 2010 / 2013 - PAM and the Cluster Core Resources",
https://learn.microsoft.com/archive/blogs/timmcmic/exchange-2010-2013-pam-and-the-cluster-core-resources;
Move-ClusterGroup: https://learn.microsoft.com/powershell/module/failoverclusters/move-clustergroup
"""

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
from dagcheck.lab.objects import LabServer
from dagcheck.lab.state import Organization


def _cluster_node(org: Organization, s: LabServer, dag_name: str) -> Any:
    return ps.obj(
        [
            "Microsoft.FailoverClusters.PowerShell.ClusterNode",
            "Microsoft.FailoverClusters.PowerShell.ClusterObject",
            "System.Object",
        ],
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
        raise LabCmdletError(
            "The cluster service is not running on this computer.",
            "ConnectionError",
            "ClusterCmdletNoCluster,Microsoft.FailoverClusters.PowerShell.GetNodeCommand",
            "System.Exception",
        )
    if call.server.services.get("ClusSvc") != "Running":
        raise LabCmdletError(
            f"Cluster service on node '{call.server.name.upper()}' is not running.",
            "ConnectionError",
            "ClusterCmdletNoCluster,Microsoft.FailoverClusters.PowerShell.GetNodeCommand",
            "System.Exception",
        )
    return dag, [call.org.server(m) for m in dag.members]


@cmdlet("Get-ClusterNode", "Name", "Cluster", "InputObject", endpoint=WINDOWS)
def get_cluster_node(call: Call) -> list[Any]:
    dag, members = _cluster_members(call)
    if call.get("Name"):
        members = [m for m in members if m.name.lower() == str(call.get("Name")).lower()]
        if not members:
            raise LabCmdletError(
                f"The cluster node '{call.get('Name')}' was not found.",
                "ObjectNotFound",
                "ClusterObjectNotFound,Microsoft.FailoverClusters.PowerShell.GetNodeCommand",
                "System.Exception",
            )
    return [_cluster_node(call.org, m, dag.name) for m in members]


def _node_param(call: Call) -> LabServer:
    name = call.get("Name") or call.server.name
    return lookup_server(call, name)


@cmdlet(
    "Suspend-ClusterNode", "Name", "Cluster", "Drain", "ForceDrain", "Wait", "TargetNode", endpoint=WINDOWS, changes_state=True
)
def suspend_cluster_node(call: Call) -> list[Any]:
    dag, _ = _cluster_members(call)
    node = _node_param(call)
    if node.cluster_state == "Down":
        raise LabCmdletError(
            f"The node '{node.name.upper()}' is down.",
            "InvalidOperation",
            "Suspend-ClusterNode,Microsoft.FailoverClusters.PowerShell.SuspendClusterNodeCommand",
            "System.Exception",
        )
    node.cluster_state = "Paused"  # the default cluster group (and so the PAM) stays where it is
    return [_cluster_node(call.org, node, dag.name)]


@cmdlet("Resume-ClusterNode", "Name", "Cluster", "Failback", endpoint=WINDOWS, changes_state=True)
def resume_cluster_node(call: Call) -> list[Any]:
    dag, _ = _cluster_members(call)
    node = _node_param(call)
    if node.cluster_state == "Paused":
        node.cluster_state = "Up"
    return [_cluster_node(call.org, node, dag.name)]


DEFAULT_GROUP = "Cluster Group"


def _cluster_group(dag: Any) -> Any:
    """A ClusterGroup as Move-ClusterGroup/Get-ClusterGroup return it: Name, OwnerNode, State (the
    properties the Learn examples print; the shape of OwnerNode over remoting is a node bag: guessed)."""
    return ps.obj(
        [
            "Microsoft.FailoverClusters.PowerShell.ClusterGroup",
            "Microsoft.FailoverClusters.PowerShell.ClusterObject",
            "System.Object",
        ],
        {
            "Name": DEFAULT_GROUP,
            "OwnerNode": dag.primary_active_manager.upper(),
            "State": ps.enum("Microsoft.FailoverClusters.PowerShell.ClusterGroupState", "Online"),
            "Cluster": dag.name,
            "IsCoreGroup": True,
        },
        to_string=DEFAULT_GROUP,
    )


def _group_not_found(call: Call, name: str) -> LabCmdletError:
    return LabCmdletError(
        f"The cluster group '{name}' was not found.",
        "ObjectNotFound",
        f"ClusterObjectNotFound,Microsoft.FailoverClusters.PowerShell.{call.cmdlet.replace('-', '')}Command",
        "System.Exception",
    )


@cmdlet("Get-ClusterGroup", "Name", "Cluster", "InputObject", endpoint=WINDOWS)
def get_cluster_group(call: Call) -> list[Any]:
    dag, _ = _cluster_members(call)
    name = call.get("Name")
    if name and str(name).lower() != DEFAULT_GROUP.lower():
        raise _group_not_found(call, str(name))
    return [_cluster_group(dag)]


@cmdlet(
    "Move-ClusterGroup", "Name", "Node", "Cluster", "IgnoreLocked", "Wait", "InputObject", endpoint=WINDOWS, changes_state=True
)
def move_cluster_group(call: Call) -> list[Any]:
    """Moves the default cluster group, and with it the PAM role, to -Node (or to any other node that is Up).
    A Paused or Down node cannot own a group."""
    dag, members = _cluster_members(call)
    name = str(call.get("Name") or DEFAULT_GROUP)
    if name.lower() != DEFAULT_GROUP.lower():
        raise _group_not_found(call, name)
    if call.get("Node"):
        target = lookup_server(call, str(call.get("Node")))
        if target.name.lower() not in [m.name.lower() for m in members]:
            raise LabCmdletError(
                f"The cluster node '{call.get('Node')}' was not found.",
                "ObjectNotFound",
                "ClusterObjectNotFound,Microsoft.FailoverClusters.PowerShell.MoveClusterGroupCommand",
                "System.Exception",
            )
    else:
        other = next(
            (m for m in members if m.cluster_state == "Up" and m.name.lower() != dag.primary_active_manager.lower()), None
        )
        if other is None:
            raise LabCmdletError(
                "No other node is available to own the group.",
                "InvalidOperation",
                "MoveClusterGroup,Microsoft.FailoverClusters.PowerShell.MoveClusterGroupCommand",
                "System.Exception",
            )
        target = other
    if target.cluster_state != "Up":
        raise LabCmdletError(
            f"An error occurred while moving the clustered role '{name}'. The cluster node "
            f"'{target.name.upper()}' is {target.cluster_state} (guessed message).",
            "InvalidOperation",
            "MoveClusterGroup,Microsoft.FailoverClusters.PowerShell.MoveClusterGroupCommand",
            "System.Exception",
        )
    dag.primary_active_manager = target.name
    return [_cluster_group(dag)]
