"""Database copy status: every copy mounted or healthy, queues short, content index usable."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.inventory import Expectations
from dagcheck.sources.database_copies import DatabaseCopyStatus

HEALTHY_PASSIVE = ("Healthy", "DisconnectedAndHealthy", "SeedingSource")


@check(
    "DAG-COPY-001",
    "Every database copy is Mounted (active) or Healthy (passive)",
    severity="critical",
    rationale="A Failed, Suspended or Resynchronizing copy is no redundancy: if the active copy is lost, "
    "Active Manager cannot activate it.",
    remediation="Resume-MailboxDatabaseCopy -Identity {key}  (if it stays Failed: Update-MailboxDatabaseCopy -Identity {key})",
    phases=("health", "postflight"),
    source="copies",
)
def test_database_copy_is_healthy(item: DatabaseCopyStatus) -> None:
    expected = "Mounted" if item.active else " or ".join(HEALTHY_PASSIVE)
    ok = item.status == "Mounted" if item.active else item.status in HEALTHY_PASSIVE
    require(
        ok,
        f"{item.key} is {item.status}" + (f": {item.error_message}" if item.error_message else ""),
        expected=expected,
        actual=item.status,
    )


@check(
    "DAG-COPY-002",
    "Copy queue of every passive copy is under the threshold",
    severity="critical",
    rationale="The copy queue counts logs not yet copied from the active copy; a long queue means data "
    "loss on failover: the default AutoDatabaseMountDial (GoodAvailability) mounts automatically only with at "
    "most 6 logs missing, and Active Manager's best copy selection skips copies with 10 or more (Learn, "
    "'Exchange Server Active Manager'). Default threshold 6 (expectations.copy_queue_max).",
    remediation="Check replication networks and MSExchangeRepl on {server}; "
    "Get-MailboxDatabaseCopyStatus -Identity {key} | Format-List *Queue*,*Error*",
    phases=("health", "preflight", "postflight"),
    source="copies",
    select=lambda c: not c.active,
)
def test_copy_queue_is_short(item: DatabaseCopyStatus, expect: Expectations) -> None:
    require(
        item.copy_queue <= expect.copy_queue_max,
        f"{item.key} has {item.copy_queue} logs in its copy queue",
        expected=f"at most {expect.copy_queue_max}",
        actual=str(item.copy_queue),
    )


@check(
    "DAG-COPY-003",
    "Replay queue of every non-lagged passive copy is under the threshold",
    severity="critical",
    rationale="The replay queue counts copied logs not yet replayed; a long one makes activation slow, and "
    "Active Manager's best copy selection skips copies with 50 or more (Learn, 'Exchange Server Active "
    "Manager'; default threshold 49, expectations.replay_queue_max). "
    "Lagged copies hold logs on purpose (ReplayLagStatus Enabled), so they are not judged here.",
    remediation="Get-MailboxDatabaseCopyStatus -Identity {key} | Format-List ReplayQueueLength,ReplaySuspended,ErrorMessage",
    phases=("health", "preflight", "postflight"),
    source="copies",
    select=lambda c: not c.active and not c.lagged,
)
def test_replay_queue_is_short(item: DatabaseCopyStatus, expect: Expectations) -> None:
    require(
        item.replay_queue <= expect.replay_queue_max,
        f"{item.key} has {item.replay_queue} logs in its replay queue",
        expected=f"at most {expect.replay_queue_max}",
        actual=str(item.replay_queue),
    )


@check(
    "DAG-COPY-004",
    "Content index state is allowed",
    severity="warning",
    rationale="A Failed index breaks search on activation. Exchange 2019+ reports NotApplicable (search "
    "lives in the database); lagged copies report AutoSuspended by design.",
    remediation="Update-MailboxDatabaseCopy -Identity {key} -CatalogOnly",
    phases=("health", "postflight"),
    source="copies",
)
def test_content_index_is_healthy(item: DatabaseCopyStatus, expect: Expectations) -> None:
    require(
        item.content_index in expect.content_index_allowed,
        f"{item.key} content index is {item.content_index}",
        expected=" or ".join(expect.content_index_allowed),
        actual=item.content_index,
    )
