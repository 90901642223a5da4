"""Transport queues: mail does not pile up, and poison messages are never ignored."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.inventory import Expectations
from dagcheck.model import QueueInfo


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
    require(item.message_count <= expect.transport_queue_max and item.status != "Retry",
            f"queue {item.identity} (next hop {item.next_hop}) holds {item.message_count} message(s), status {item.status}"
            + (f", last error: {item.last_error}" if item.last_error else ""),
            expected=f"at most {expect.transport_queue_max} message(s), not in Retry",
            actual=f"{item.message_count} message(s), {item.status}")


@check(
    "DAG-QUEUE-002",
    "Poison message queue is empty",
    severity="warning",
    rationale="A poison message crashed transport while being processed; it is never delivered nor "
    "redirected, and must be examined and then released or deleted by an administrator.",
    remediation="Get-Message -Queue {server}\\Poison | Format-List ; then Resume-Message or Remove-Message",
    phases=("health", "preflight"),
    source="queues",
    select=lambda q: q.kind == "Poison",
    per_server=True,
)
def test_poison_queue_is_empty(item: tuple[QueueInfo, ...]) -> None:
    # Get-Queue lists the Poison queue only while it holds messages (shape guessed; an empty one passes too).
    count = sum(q.message_count for q in item)
    where = ", ".join(q.identity for q in item)
    require(count == 0, f"{where} holds {count} poison message(s)", expected="0", actual=str(count))
