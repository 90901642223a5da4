"""Before a member goes down: its databases stay protected, the cluster keeps quorum, one at a time."""

from __future__ import annotations

import pytest

from dagcheck.catalogue import check, require
from dagcheck.context import DagView
from dagcheck.inventory import Expectations
from dagcheck.rules.dag import quorum_after_pausing, redundant_copies
from dagcheck.sources.cluster_nodes import ClusterNode
from dagcheck.sources.dags import DagStatus
from dagcheck.sources.database_copies import DatabaseCopyStatus


@check(
    "DAG-RED-001",
    "Every database active on the server has another copy ready to take over",
    severity="critical",
    rationale="Taking the server down moves its active databases; each needs at least one other copy that is "
    "Healthy (or DisconnectedAndHealthy / SeedingSource), not lagged, not activation-suspended, with short "
    "queues, on a member that is neither Blocked nor in maintenance. Lagged copies are no redundancy.",
    remediation="Resume or reseed a copy of {key} on another member (Resume-MailboxDatabaseCopy / "
    "Update-MailboxDatabaseCopy) before maintenance",
    phases=("preflight",),
    source="copies",
    select=lambda c: c.active,
)
def test_active_database_has_a_redundant_copy(item: DatabaseCopyStatus, dag: DagView, expect: Expectations) -> None:
    copies = dag.each("copies")
    policies = {m: v[0] for m, v in dag.each("mailbox_server").items()}
    maintenance = {m: dag.maintenance_signs(m) for m in dag.others}
    good, refused = redundant_copies(
        item.database, item.server, copies, policies, maintenance, expect.copy_queue_max, expect.replay_queue_max
    )
    require(
        bool(good),
        f"{item.database} is active on {item.server} and no other copy can take over"
        + (f" ({'; '.join(refused)})" if refused else " (it has no other copy)"),
        expected="at least one healthy, non-lagged copy on an available member",
        actual="; ".join(refused) or "no other copy",
    )


@check(
    "DAG-QUORUM-001",
    "The DAG keeps quorum with this member's cluster node down",
    severity="critical",
    rationale="A paused node keeps its vote; the question is quorum with this node down, as it is when the "
    "server reboots or the cluster service stops during the patch. If the remaining Up nodes plus the file share "
    "witness (when in use) are not a majority, the cluster stops and every database in the DAG dismounts "
    "(Learn, 'Database availability groups': quorum is node majority, with the witness for an even member count).",
    remediation="Bring the Down nodes back (Start-ClusterNode) or repair the witness before maintenance of {server}",
    phases=("preflight",),
    source="cluster_nodes",
    per_server=True,
)
def test_quorum_survives_pausing_this_node(item: tuple[ClusterNode, ...], dag: DagView) -> None:
    q = quorum_after_pausing(item, dag.server.lower(), dag.status())
    down = [f"{n.name} {n.state}" for n in item if n.state != "Up" and n.name != dag.server.lower()]
    require(
        q.has_quorum,
        f"pausing {dag.server} leaves {q.votes_present} of {q.votes_total} votes"
        + (f" ({', '.join(down)}; witness {'counted' if q.witness_counted else 'not available'})"),
        expected=f"more than {q.votes_total // 2} votes",
        actual=f"{q.votes_present} of {q.votes_total}",
    )


@check(
    "DAG-QUORUM-002",
    "The file share witness is in use",
    severity="critical",
    rationale="With an even number of members the witness is the tie-breaking vote; WitnessShareInUse "
    "InvalidConfiguration or None means the DAG would lose quorum with one member down.",
    remediation="Check the witness server and share (Get-DatabaseAvailabilityGroup -Status | fl Witness*) and "
    "Set-DatabaseAvailabilityGroup -WitnessServer <server> -WitnessDirectory <dir>",
    phases=("health", "preflight"),
    source="dag_status",
    per_server=True,
)
def test_witness_share_in_use(item: tuple[DagStatus, ...], dag: DagView) -> None:
    status = dag.status()
    if status.witness_server is None or len(status.servers) % 2:
        pytest.skip(
            f"{status.name} has {len(status.servers)} members and witness {status.witness_server}: "
            "no witness vote in use, nothing to check"
        )
    require(
        status.witness_share_in_use in ("Primary", "Alternate"),
        f"{status.name}: WitnessShareInUse is {status.witness_share_in_use} (witness {status.witness_server}, "
        f"seen from {dag.server})",
        expected="Primary or Alternate",
        actual=str(status.witness_share_in_use),
    )


@check(
    "DAG-ONE-001",
    "No other member of the DAG is in maintenance",
    severity="critical",
    rationale="Two members down at once halves the redundancy the DAG was sized for and can cost quorum; a "
    "member still Paused, Blocked or ServerWideOffline from an earlier maintenance counts as down.",
    remediation="Finish the other member's maintenance first (or set dags[].allow_parallel_maintenance)",
    phases=("preflight",),
    source="mailbox_server",
    per_server=True,
)
def test_no_other_member_in_maintenance(item: tuple, dag: DagView) -> None:
    dag_spec = dag.inventory.dag_of(dag.server)
    busy = {m: dag.maintenance_signs(m) for m in dag.others}
    busy = {m: s for m, s in busy.items() if s}
    allowed = dag_spec is not None and dag_spec.allow_parallel_maintenance
    require(
        allowed or not busy,
        "other members are in maintenance: " + "; ".join(f"{m} ({', '.join(s)})" for m, s in busy.items()),
        expected="no other member in maintenance",
        actual=", ".join(busy) or "none",
    )
