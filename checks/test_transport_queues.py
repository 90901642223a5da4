"""Transport queues: mail does not pile up, and poison messages are never ignored."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.context import DagView
from dagcheck.inventory import Expectations
from dagcheck.rules.components import held_by
from dagcheck.sources.queues import QueueInfo


@check(
    "DAG-QUEUE-001",
    "Delivery and submission queues are not backing up",
    severity="critical",
    rationale="Messages waiting in a delivery, Submission or Unreachable queue are not delivered; a queue in "
    "Retry means the next hop is failing. Shadow queues hold redundant copies and are judged separately.",
    remediation="Get-Queue -Identity {key} | Format-List Status,LastError,MessageCount ; Retry-Queue -Identity {key}",
    phases=("health",),
    source="queues",
    select=lambda q: q.kind in ("Delivery", "Submission", "Unreachable"),
)
def test_queue_is_not_backing_up(item: QueueInfo, expect: Expectations) -> None:
    require(
        item.message_count <= expect.transport_queue_max and item.status != "Retry",
        f"queue {item.identity} (next hop {item.next_hop}) holds {item.message_count} message(s), status {item.status}"
        + (f", last error: {item.last_error}" if item.last_error else ""),
        expected=f"at most {expect.transport_queue_max} message(s), not in Retry",
        actual=f"{item.message_count} message(s), {item.status}",
    )


@check(
    "DAG-QUEUE-002",
    "Poison message queue is empty",
    severity="warning",
    rationale="A poison message crashed transport while being processed; it is never delivered nor "
    "redirected, and must be examined and then released or deleted by an administrator.",
    remediation="Get-Message -Queue {server}\\Poison | Format-List ; then Resume-Message or Remove-Message",
    phases=("health", "preflight", "maintenance"),
    source="queues",
    select=lambda q: q.kind == "Poison",
    per_server=True,
)
def test_poison_queue_is_empty(item: tuple[QueueInfo, ...]) -> None:
    # Get-Queue lists the Poison queue only while it holds messages (shape guessed; an empty one passes too).
    count = sum(q.message_count for q in item)
    where = ", ".join(q.identity for q in item)
    require(count == 0, f"{where} holds {count} poison message(s)", expected="0", actual=str(count))


@check(
    "DAG-TRANS-001",
    "The server that takes the messages has HubTransport Active",
    severity="critical",
    rationale="Redirect-Message hands the queued mail to the target; a target that is draining, in "
    "maintenance or unreachable would strand it. The target is --target or a member of the same site first.",
    remediation="Choose another --target, or bring HubTransport on the target back: Set-ServerComponentState "
    "-Identity <target> -Component HubTransport -State Active -Requester Maintenance",
    phases=("preflight",),
    source="components",
    per_server=True,
    select=lambda c: c.component in ("HubTransport", "ServerWideOffline"),
)
def test_target_transport_is_active(item: tuple, dag: DagView) -> None:
    target = dag.target()
    require(
        target is not None,
        f"no member of the DAG can take {dag.server}'s messages",
        expected="a member with HubTransport Active",
        actual="none",
    )
    components = {c.component: c for c in dag.snap(target).get("components")}  # type: ignore[arg-type]
    states = {name: c.state for name, c in components.items()}
    # A component held Draining or Inactive names its requester (issue 23).
    held = "; ".join(
        f"{name} {held_by(components[name])}"
        for name in ("HubTransport", "ServerWideOffline")
        if name in components and states[name] != "Active"
    )
    require(
        states.get("HubTransport") == "Active" and states.get("ServerWideOffline") == "Active",
        f"target {target} has HubTransport {states.get('HubTransport')}, ServerWideOffline {states.get('ServerWideOffline')}"
        + (f" ({held})" if held else ""),
        expected="HubTransport Active on the target",
        actual=f"HubTransport {states.get('HubTransport')}",
    )


@check(
    "DAG-TRANS-002",
    "Local queues are empty in maintenance (Shadow and Poison excepted)",
    severity="critical",
    rationale="Mail still queued on a server in maintenance is delayed until it comes back; Shadow queues hold "
    "redundant copies (judged on the other members) and Poison messages are reported by DAG-QUEUE-002.",
    remediation="Redirect-Message -Server {server} -Target <target FQDN>, then wait; Get-Queue -Server {server}",
    phases=("maintenance",),
    source="queues",
    per_server=True,  # queues come and go while a server drains: judge them together, not by identity
    select=lambda q: q.kind not in ("Shadow", "Poison"),
)
def test_local_queues_are_drained(item: tuple[QueueInfo, ...]) -> None:
    left = [q for q in item if q.message_count]
    require(
        not left,
        "messages still queued: " + "; ".join(f"{q.identity} (next hop {q.next_hop}) holds {q.message_count}" for q in left),
        expected="0 messages outside Shadow and Poison",
        actual=f"{sum(q.message_count for q in left)} message(s)",
    )


@check(
    "DAG-TRANS-003",
    "No other member holds shadow copies of this server's messages",
    severity="critical",
    rationale="Shadow redundancy keeps a copy of each message on another server until its primary delivers it; "
    "a shadow queue whose NextHopDomain is this server means it still owns undelivered mail.",
    remediation="Wait for the shadow queues to empty (Get-Queue -Server <member> | ? NextHopDomain -eq <fqdn>), "
    "or keep {server} in service until they do",
    phases=("maintenance",),
    source="queues",
    per_server=True,
    select=lambda q: q.kind == "Shadow",
)
def test_no_shadow_copies_for_this_server(item: tuple, dag: DagView) -> None:
    fqdn = dag.server_info(dag.server).fqdn.lower()
    held = [
        (m, q)
        for m, queues in dag.each("queues", dag.others).items()
        for q in queues
        if q.kind == "Shadow" and q.next_hop.lower() == fqdn and q.message_count
    ]
    require(
        not held,
        f"shadow copies of {dag.server}'s mail are held on "
        + ", ".join(f"{m} ({q.identity}: {q.message_count})" for m, q in held),
        expected="no shadow queue for this server",
        actual=f"{sum(q.message_count for _, q in held)} message(s)",
    )
