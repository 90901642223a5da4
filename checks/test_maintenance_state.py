"""The nightly run and maintenance: a member in maintenance is either planned or forgotten."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.context import DagView
from dagcheck.maintenance.planned import MaintenanceState
from dagcheck.rules.dag import quorum_after_pausing, unserved_without
from dagcheck.sources.components import ComponentState


@check(
    "DAG-MAINT-001",
    "No member is left in maintenance outside a current window or transition",
    severity="critical",
    rationale="A member left Paused, Blocked or ServerWideOffline after its patch (the operator forgot the exit, "
    "or the window ended) silently costs the DAG a copy of every database and a vote; it is one of the commonest "
    "real incidents. Within a declared maintenance_windows entry, or while a dagcheck transition is current, the "
    "member's checks are skipped as planned, and with it down the DAG must keep quorum and every database it "
    "holds must be mounted on another member.",
    remediation="Finish the maintenance: pytest --phase postflight --server {server} --apply (or declare the "
    "work in maintenance_windows of the inventory if it is still going on)",
    phases=("health",),
    source="components",
    per_server=True,
)
def test_member_not_forgotten_in_maintenance(
    item: tuple[ComponentState, ...], maintenance: MaintenanceState | None, dag: DagView
) -> None:
    if maintenance is None:
        _require_judgement_inputs(dag)
        return
    require(
        maintenance.planned,
        maintenance.describe(),
        expected="in service, or in maintenance within a current maintenance window or transition",
        actual=f"in maintenance ({', '.join(maintenance.signs)}); {maintenance.reason}",
    )
    if dag.inventory.dag_of(dag.server) is None:
        return
    # Planned: with this member down, every database it holds is mounted on another member ...
    lacking = unserved_without(dag.server.lower(), *_copies_with_it_down(dag))
    require(
        not lacking,
        f"{maintenance.describe()}, and with it down no other member has mounted " + "; ".join(lacking),
        expected="each of its databases mounted on another member",
        actual="; ".join(lacking),
        remediation="Move the databases off it (Move-ActiveMailboxDatabase) or repair their other copies now",
    )
    # ... and the DAG keeps quorum (its own view of the cluster).
    q = quorum_after_pausing(dag.snap(dag.server).get("cluster_nodes"), dag.server.lower(), dag.status())
    require(
        q.has_quorum,
        f"{maintenance.describe()}, and with it down the DAG has {q.votes_present} of {q.votes_total} votes",
        expected=f"more than {q.votes_total // 2} votes",
        actual=f"{q.votes_present} of {q.votes_total}",
        remediation="Bring the other Down nodes or the witness back now: the DAG is one failure from losing quorum",
    )


def _require_judgement_inputs(dag: DagView) -> None:
    """ "In service" is the judgement of the member's components, cluster node and activation settings
    (dagcheck.maintenance.planned.state_of), which answers None also when one of them could not be read. Read
    them here: a failed one fails this check as "could not collect" with its reason, instead of passing it."""
    snap = dag.snap(dag.server)
    if dag.inventory.dag_of(dag.server) is not None:  # a server in no DAG has no cluster to read
        snap.get("cluster_nodes")
    require(
        bool(snap.get("mailbox_server")),
        f"could not collect: Get-MailboxServer returned nothing for {dag.server}",
        expected="the member's activation settings",
        actual="no object",
    )


def _copies_with_it_down(dag: DagView) -> tuple[dict, set[str] | None]:
    """Every member's copies (the others' must be read: fail closed), and, when the member's own cannot be read
    (rebooting in its window), the databases it holds as the others' Get-MailboxDatabase list them (its
    ActivationPreference): never an empty list that would pass the check for want of data."""
    copies = dict(dag.each("copies", dag.others))
    me = dag.server.lower()
    if dag.snap(me).failed("copies") is None:
        copies[me] = dag.snap(me).get("copies")
        return copies, None
    held = {
        db.name
        for dbs in dag.each("databases", dag.others).values()
        for db in dbs
        if me in {server for server, _ in db.activation_preference}
    }
    return copies, held
