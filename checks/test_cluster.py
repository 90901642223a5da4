"""Cluster nodes and activation settings, in maintenance and back in service."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.context import DagView
from dagcheck.inventory import Expectations
from dagcheck.sources.cluster_nodes import ClusterNode
from dagcheck.sources.dags import DagStatus
from dagcheck.sources.mailbox_servers import MailboxServer


@check(
    "DAG-CLU-001",
    "In maintenance the cluster node is Paused and does not hold the PAM role",
    severity="critical",
    rationale="A paused node cannot become the Primary Active Manager, but pausing does not move the PAM away: "
    "the PAM is the owner of the default cluster group, which stays where it is until it is moved. "
    "StartDagServerMaintenance.ps1 therefore pauses the node and then moves the PAM when the member holds it "
    "(DagCommonLibrary.ps1 Move-DagActiveManager; Learn, 'Manage database availability groups', Performing "
    "maintenance on DAG members; Tim McMichael, Microsoft, 'Exchange 2010 / 2013 - PAM and the Cluster Core "
    "Resources'). Left on a member under maintenance, the PAM role fails over when it reboots.",
    remediation="Suspend-ClusterNode -Name {server}; then, if it holds the PAM, "
    "Move-ClusterGroup -Name 'Cluster Group' -Node <another member>",
    phases=("maintenance",),
    source="cluster_nodes",
    per_server=True,
)
def test_node_paused_and_not_pam(item: tuple[ClusterNode, ...], dag: DagView) -> None:
    node = next((n for n in item if n.name == dag.server.lower()), None)
    pam = dag.status().primary_active_manager
    state = node.state if node else "not a cluster node"
    require(
        state == "Paused" and pam != dag.server.lower(),
        f"{dag.server}: node {state}, PAM on {pam}",
        expected="node Paused, PAM on another member",
        actual=f"node {state}, PAM {pam}",
    )


@check(
    "DAG-CLU-002",
    "Every cluster node is Up",
    severity="critical",
    rationale="A Down or still Paused node is a member that cannot host active databases and casts no vote.",
    remediation="Resume-ClusterNode -Name <node> (Paused) or Start-ClusterNode -Name <node> (Down)",
    phases=("health", "postflight"),
    source="cluster_nodes",
    select=lambda n: n.name == n.seen_from,  # each node judged once, through its own server
)
def test_cluster_node_up(item: ClusterNode) -> None:
    require(item.state == "Up", f"cluster node {item.name} is {item.state}", expected="Up", actual=item.state)


@check(
    "DAG-ACT-001",
    "In maintenance database activation is blocked and active copies are moved away",
    severity="critical",
    rationale="DatabaseCopyAutoActivationPolicy Blocked keeps Active Manager from activating copies here, "
    "and DatabaseCopyActivationDisabledAndMoveNow $true moves the active ones to other members.",
    remediation="Set-MailboxServer -Identity {server} -DatabaseCopyActivationDisabledAndMoveNow $true "
    "-DatabaseCopyAutoActivationPolicy Blocked",
    phases=("maintenance",),
    source="mailbox_server",
)
def test_activation_blocked_in_maintenance(item: MailboxServer) -> None:
    require(
        item.activation_policy == "Blocked" and item.move_now,
        f"{item.name}: activation policy {item.activation_policy}, MoveNow {item.move_now}",
        expected="Blocked, MoveNow $true",
        actual=f"{item.activation_policy}, MoveNow {item.move_now}",
    )


@check(
    "DAG-ACT-002",
    "Database activation is back to its usual policy",
    severity="critical",
    rationale="A server left Blocked or with MoveNow $true never hosts active databases again: the DAG runs "
    "with less capacity than planned. The expected policy comes from the inventory (IntrasiteOnly is legitimate).",
    remediation="Set-MailboxServer -Identity {server} -DatabaseCopyActivationDisabledAndMoveNow $false "
    "-DatabaseCopyAutoActivationPolicy <expected>",
    phases=("health", "postflight"),
    source="mailbox_server",
)
def test_activation_restored(item: MailboxServer, expect: Expectations) -> None:
    require(
        item.activation_policy == expect.activation_policy and not item.move_now,
        f"{item.name}: activation policy {item.activation_policy}, MoveNow {item.move_now}",
        expected=f"{expect.activation_policy}, MoveNow $false",
        actual=f"{item.activation_policy}, MoveNow {item.move_now}",
        remediation=f"Set-MailboxServer -Identity {item.name} -DatabaseCopyActivationDisabledAndMoveNow $false "
        f"-DatabaseCopyAutoActivationPolicy {expect.activation_policy}",
    )


@check(
    "DAG-DAG-001",
    "Every DAG member is operational",
    severity="critical",
    rationale="OperationalServers (Get-DatabaseAvailabilityGroup -Status) lists the members Active Manager "
    "can use; a member missing from it cannot host databases.",
    remediation="Get-DatabaseAvailabilityGroup -Status | fl Name,OperationalServers,StartedMailboxServers",
    phases=("health", "postflight"),
    source="dag_status",
    per_server=True,
)
def test_all_members_operational(item: tuple[DagStatus, ...], dag: DagView) -> None:
    status = dag.status()  # this server's own DAG, as it reports it
    missing = sorted(set(status.servers) - set(status.operational_servers))
    # A member in planned maintenance may be out (rebooting); DAG-MAINT-001 judges the DAG without it.
    missing = [m for m in missing if not getattr(dag.maintenance(m), "planned", False)]
    require(
        not missing,
        f"{status.name}: {', '.join(missing)} not operational (seen from {dag.server})",
        expected="all members operational",
        actual=f"missing: {', '.join(missing)}",
    )
