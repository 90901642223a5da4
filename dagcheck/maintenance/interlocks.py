"""Interlocks: reasons to refuse entering maintenance, found before a single command changes anything.

Each reads fresh state and reuses the rules the pre-flight checks use, so the gate and the transition
cannot disagree on what "safe" means. Each is judged on its own, and one that cannot read the state
it needs refuses (fail closed: what cannot be read cannot be shown safe).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dagcheck.errors import RemoteError
from dagcheck.maintenance import lease
from dagcheck.maintenance.steps import Ctx
from dagcheck.rules.dag import in_maintenance, quorum_after_pausing, redundant_copies


@dataclass(frozen=True)
class Refusal:
    interlock: str  # gate, one_at_a_time, redundancy, quorum, target
    reason: str


def _others(ctx: Ctx) -> list[str]:
    return [m for m in ctx.members() if m != ctx.server.lower()]


def _busy(ctx: Ctx) -> dict[str, list[str]]:
    busy = {}
    for m in _others(ctx):
        signs = in_maintenance(
            m, ctx.live.read(m, "components"), ctx.live.read(m, "cluster_nodes"), ctx.live.one(m, "mailbox_server")
        )
        if signs:
            busy[m] = signs
    return busy


def _one_at_a_time(ctx: Ctx) -> list[str]:
    """Before this run's own claim: refuse while the DAG's lease slots are taken by other members (the
    claim made afterwards settles who wins when two runs get past this at the same moment)."""
    busy = lease.others_holding(ctx)
    if len(busy) >= lease.slots(ctx):
        return [lease.busy_refusal(ctx, busy)]
    return []


def _redundancy(ctx: Ctx) -> list[str]:
    copies = {m: ctx.live.read(m, "copies") for m in ctx.members()}
    policies = {m: ctx.live.one(m, "mailbox_server") for m in ctx.members()}
    busy = _busy(ctx)
    e = ctx.inventory.expectations
    out = []
    for copy in copies[ctx.server.lower()]:
        if copy.active:
            good, refused = redundant_copies(
                copy.database, ctx.server.lower(), copies, policies, busy, e.copy_queue_max, e.replay_queue_max
            )
            if not good:
                out.append(f"{copy.database} would be left without a healthy copy ({'; '.join(refused) or 'no other copy'})")
    return out


def _quorum(ctx: Ctx) -> list[str]:
    dag = ctx.inventory.dag_of(ctx.server)
    status = next(d for d in ctx.live.read(ctx.server, "dag_status") if dag and d.name.lower() == dag.name.lower())
    q = quorum_after_pausing(ctx.live.read(ctx.server, "cluster_nodes"), ctx.server.lower(), status)
    if q.has_quorum:
        return []
    return [f"pausing {ctx.server} would leave {q.votes_present} of {q.votes_total} votes: the DAG would lose quorum"]


def _target(ctx: Ctx) -> list[str]:
    if ctx.target is None:
        return ["no member with HubTransport Active can take the messages"]
    states = {c.component: c.state for c in ctx.live.read(ctx.target, "components")}
    if states.get("HubTransport") != "Active" or states.get("ServerWideOffline") != "Active":
        return [
            f"target {ctx.target} is not a healthy transport server (HubTransport {states.get('HubTransport')}, "
            f"ServerWideOffline {states.get('ServerWideOffline')})"
        ]
    return []


INTERLOCKS: dict[str, Callable[[Ctx], list[str]]] = {
    "one_at_a_time": _one_at_a_time,
    "redundancy": _redundancy,
    "quorum": _quorum,
    "target": _target,
}


def check_interlocks(ctx: Ctx, gate_failures: list[str]) -> list[Refusal]:
    refusals: list[Refusal] = []
    if gate_failures:
        refusals.append(
            Refusal(
                "gate",
                f"the pre-flight gate failed: {'; '.join(gate_failures[:8])}"
                + (f" (+{len(gate_failures) - 8} more)" if len(gate_failures) > 8 else ""),
            )
        )
    for name, interlock in INTERLOCKS.items():
        try:
            refusals += [Refusal(name, reason) for reason in interlock(ctx)]
        except (RemoteError, StopIteration) as exc:
            refusals.append(Refusal(name, f"could not read the state this interlock needs: {exc}"))
    return refusals
