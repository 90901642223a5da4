"""The DAG-wide maintenance lease, kept in Exchange's own state so that every dagcheck on every host sees it.

A member holds the lease as soon as it shows any sign of maintenance (`rules.dag.in_maintenance`): a
component held non-Active by requester Maintenance, its cluster node Paused, MoveNow set or activation
Blocked. Entering maintenance claims the lease with its first, harmless and reversible change
(HubTransport Draining by requester Maintenance), then re-reads every member: of the members holding the
lease, the earliest claims win (by the requester-Maintenance timestamp Get-ServerComponentState
returns, the same for every reader; ties by server name), as many as the DAG has slots
(`dags[].max_parallel_maintenance`, default 1). A run that is not among them undoes its claim and refuses.

A lease left by a crashed run stays: the member shows signs of maintenance until its own transition is
resumed (`--phase maintenance --apply`, from the host whose journal holds it) or rolled back
(`--phase postflight --apply`, from any host: leaving needs no journal). Refusals say so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dagcheck.maintenance.steps import Ctx
from dagcheck.rules.dag import in_maintenance, lease_order, lease_since


@dataclass(frozen=True)
class Holder:
    """A member that holds the lease: since when (None: no readable Maintenance timestamp) and why."""

    server: str
    since: dt.datetime | None
    signs: tuple[str, ...]

    @property
    def order(self) -> tuple[int, dt.datetime | None, str]:
        return lease_order(self.since, self.server)

    def describe(self) -> str:
        since = f"since {self.since.isoformat()}" if self.since else "since an unknown time (no Maintenance timestamp)"
        return f"{self.server} ({since}: {', '.join(self.signs)})"


def holder(ctx: Ctx, member: str) -> Holder | None:
    """Fresh state of one member: its lease, or None when it is fully in service."""
    components = ctx.live.read(member, "components")
    signs = in_maintenance(member, components, ctx.live.read(member, "cluster_nodes"), ctx.live.one(member, "mailbox_server"))
    return Holder(member, lease_since(components), tuple(signs)) if signs else None


def slots(ctx: Ctx) -> int:
    dag = ctx.inventory.dag_of(ctx.server)
    return dag.maintenance_slots if dag else 1


def how_to_clear(server: str) -> str:
    return (
        f"if no run on {server} is active any more, continue it from the host that started it with "
        f"`pytest --phase maintenance --server {server} --apply`, or roll it back from any host with "
        f"`pytest --phase postflight --server {server} --apply`"
    )


def others_holding(ctx: Ctx) -> list[Holder]:
    """Other members that hold the lease now, earliest first."""
    found = [h for m in ctx.members() if m != ctx.server and (h := holder(ctx, m)) is not None]
    return sorted(found, key=lambda h: h.order)


def busy_refusal(ctx: Ctx, busy: list[Holder]) -> str:
    return (
        "another member is in maintenance: "
        + "; ".join(h.describe() for h in busy)
        + (f" (the DAG allows {slots(ctx)} at a time)" if slots(ctx) > 1 else "")
        + "; "
        + "; ".join(how_to_clear(h.server) for h in busy)
    )


def contest(ctx: Ctx) -> str | None:
    """After this run's claim: None when this server is among the first `slots` holders, else why not."""
    mine = holder(ctx, ctx.server)
    if mine is None:
        return f"the claim on {ctx.server} is not visible after it was made"
    ahead = [h for h in others_holding(ctx) if h.order < mine.order]
    if len(ahead) < slots(ctx):
        return None
    return (
        "another member claimed maintenance first: "
        + "; ".join(h.describe() for h in ahead)
        + f" (this server's claim: {mine.since.isoformat() if mine.since else 'unknown'})"
    )
