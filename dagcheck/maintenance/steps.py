"""The steps of entering and leaving maintenance, each: is it done already? the commands; what to await.

The order follows Microsoft's procedure for DAG members (and its community variants): drain transport,
redirect, pause the cluster node, block activation and move databases, ServerWideOffline; the exit is
the reverse and ends by redistributing databases by activation preference. A step's done() reads the
live state, so a re-run skips what an interrupted run already did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagcheck.errors import RemoteError, TransitionRefused
from dagcheck.inventory import Inventory
from dagcheck.maintenance.journal import Journal
from dagcheck.maintenance.live import Live
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.components import ComponentState
from dagcheck.sources.database_copies import DatabaseCopyStatus


@dataclass(frozen=True)
class Action:
    """One command of a step, on the endpoint of a given server."""

    server: str
    endpoint: Endpoint
    command: Command

    def render(self) -> str:
        where = "" if self.endpoint is Endpoint.EXCHANGE else f"[{self.server} {self.endpoint.value}] "
        return where + self.command.render()


@dataclass
class Ctx:
    """What steps read and act on; `live` always goes to the servers."""

    server: str
    target: str | None
    live: Live
    inventory: Inventory
    journal: Journal
    notes: list[str] = field(default_factory=list)

    @property
    def fqdn(self) -> str:
        return self.inventory.server(self.server).fqdn

    def components(self, server: str | None = None) -> dict[str, ComponentState]:
        return {c.component: c for c in self.live.read(server or self.server, "components")}

    def queues(self, server: str | None = None) -> tuple[Any, ...]:
        return self.live.read(server or self.server, "queues")

    def members(self) -> list[str]:
        dag = self.inventory.dag_of(self.server)
        return [m.lower() for m in dag.members] if dag else [self.server]


@dataclass(frozen=True)
class Wait:
    """A condition polled until it holds: probe returns (satisfied, current value for progress)."""

    what: str
    probe: Callable[[Ctx], tuple[bool, object]]
    required: bool = True  # False: no progress means "go on to the next step", not failure


@dataclass(frozen=True)
class Step:
    """done: is the step's end state already there (then it is skipped); actions: its commands, built
    when the plan is made; wait: what to poll afterwards; verify: the post-condition (default: done;
    None when the next step's wait verifies it)."""

    name: str
    title: str
    done: Callable[[Ctx], bool]
    actions: Callable[[Ctx], list[Action]] = lambda ctx: []
    wait: Wait | None = None
    effect: Callable[[Ctx], None] | None = None  # work that is not a command (journal records)
    verify: Callable[[Ctx], bool] | None | str = "done"

    def postcondition(self) -> Callable[[Ctx], bool] | None:
        return self.done if self.verify == "done" else self.verify  # type: ignore[return-value]


def _held_by_maintenance(c: ComponentState, *states: str) -> bool:
    return any("Maintenance" in c.requesters(s) for s in states)


def _local_mail(ctx: Ctx) -> int:
    return sum(q.message_count for q in ctx.queues() if q.kind not in ("Shadow", "Poison"))


def _shadow_for_server(ctx: Ctx) -> int:
    total = 0
    for member in ctx.members():
        if member == ctx.server.lower():
            continue
        total += sum(q.message_count for q in ctx.queues(member) if q.kind == "Shadow" and q.next_hop.lower() == ctx.fqdn.lower())
    return total


def _drained(ctx: Ctx) -> bool:
    return _held_by_maintenance(ctx.components()["HubTransport"], "Draining", "Inactive")


def _transport_answers(ctx: Ctx) -> tuple[bool, object]:
    try:
        ctx.queues()
    except RemoteError as exc:
        return False, f"Get-Queue fails ({str(exc)[:80]})"
    return True, "Get-Queue answers"


def _set_component(ctx: Ctx, component: str, state: str) -> Action:
    return Action(
        ctx.server,
        Endpoint.EXCHANGE,
        Command.of("Set-ServerComponentState", Identity=ctx.server, Component=component, State=state, Requester="Maintenance"),
    )


def _report_poison(ctx: Ctx) -> None:
    """Poison messages are never redirected: say so (they stay for an administrator), never ignore them."""
    poison = [q for q in ctx.queues() if q.kind == "Poison" and q.message_count]
    if poison:
        ctx.notes.append(
            f"{sum(q.message_count for q in poison)} poison message(s) stay on {ctx.server} "
            f"({', '.join(q.identity for q in poison)}); examine them with Get-Message -Queue "
            f"{ctx.server}\\Poison"
        )
        ctx.journal.append(event="poison_messages", count=sum(q.message_count for q in poison))


def _record_policy(ctx: Ctx) -> None:
    policy = ctx.live.one(ctx.server, "mailbox_server").activation_policy
    if policy == "Blocked":
        # Blocked before we ever touched it: restoring "Blocked" would keep the server out of service.
        ctx.notes.append(
            f"{ctx.server} was already Blocked before maintenance; the exit restores the "
            f"inventory's {ctx.inventory.expectations.activation_policy}"
        )
        policy = ctx.inventory.expectations.activation_policy
    ctx.journal.append(event="policy_recorded", policy=policy)


def _node_state(ctx: Ctx) -> str:
    return next((n.state for n in ctx.live.read(ctx.server, "cluster_nodes") if n.name == ctx.server.lower()), "Unknown")


def _mounted_here(ctx: Ctx) -> list[str]:
    return [c.database for c in ctx.live.read(ctx.server, "copies") if c.status in ("Mounted", "Mounting")]


def _pam(ctx: Ctx) -> str:
    dag = ctx.inventory.dag_of(ctx.server)
    return next(
        d.primary_active_manager for d in ctx.live.read(ctx.server, "dag_status") if dag and d.name.lower() == dag.name.lower()
    )


def _pam_target(ctx: Ctx) -> str:
    """The member to give the PAM role to: the transition's target when it is an Up member of this DAG, else
    the first other member whose cluster node is Up (a Paused or Down node cannot own the cluster group)."""
    up = [n.name for n in ctx.live.read(ctx.server, "cluster_nodes") if n.state == "Up" and n.name != ctx.server.lower()]
    if ctx.target and ctx.target.lower() in up:
        return ctx.target.lower()
    if not up:
        raise TransitionRefused(f"{ctx.server} holds the PAM and no other cluster node is Up to take it over")
    return sorted(up)[0]


def enter_steps(monitoring_off: bool) -> list[Step]:
    components = ["ServerWideOffline"] + (["Monitoring"] if monitoring_off else [])
    return [
        Step(
            "record_policy",
            "Record the current database activation policy",
            done=lambda ctx: ctx.journal.recorded_policy() is not None,
            effect=_record_policy,
        ),
        Step(
            "drain_transport",
            "Drain HubTransport (requester Maintenance)",
            done=_drained,
            actions=lambda ctx: [_set_component(ctx, "HubTransport", "Draining")],
        ),
        Step(
            "restart_transport",
            "Restart MSExchangeTransport so that draining takes effect",
            done=lambda ctx: _drained(ctx) and _local_mail(ctx) == 0,
            verify=lambda ctx: _transport_answers(ctx)[0],
            actions=lambda ctx: [Action(ctx.server, Endpoint.WINDOWS, Command.of("Restart-Service", Name="MSExchangeTransport"))],
            wait=Wait("transport to answer again", _transport_answers),
        ),
        # Learn's procedure on Exchange 2016: UMCallRouter Draining (requester Maintenance) after the transport
        # restart and before StartDagServerMaintenance.ps1. 2019 and SE have no UMCallRouter.
        Step(
            "drain_um_call_router",
            "Drain UMCallRouter (Exchange 2016, requester Maintenance)",
            done=lambda ctx: not _is_exchange_2016(ctx) or _um_call_router_held(ctx, "Draining", "Inactive"),
            actions=lambda ctx: [_set_component(ctx, "UMCallRouter", "Draining")],
        ),
        Step(
            "wait_local_drain",
            "Wait for the local queues to drain",
            done=lambda ctx: _drained(ctx) and _local_mail(ctx) == 0,
            verify=None,
            wait=Wait("local queues to drain (messages)", lambda ctx: ((n := _local_mail(ctx)) == 0, n), required=False),
        ),
        Step(
            "redirect_messages",
            "Redirect the remaining messages to the target server",
            # Also re-run while other members hold shadow copies for this server: the redirect is what
            # makes the primary hand its mail over and the shadows go.
            done=lambda ctx: _drained(ctx) and _local_mail(ctx) == 0 and _shadow_for_server(ctx) == 0,
            verify=None,
            actions=lambda ctx: [
                Action(
                    ctx.server,
                    Endpoint.EXCHANGE,
                    Command.of(
                        "Redirect-Message", Server=ctx.server, Target=ctx.inventory.server(ctx.target or "").fqdn, Confirm=False
                    ),
                )
            ],
        ),
        Step(
            "wait_queues_empty",
            "Wait for local queues and other members' shadow queues for this server to empty",
            effect=_report_poison,
            done=lambda ctx: _local_mail(ctx) == 0 and _shadow_for_server(ctx) == 0,
            wait=Wait(
                "queues to empty (local + shadow messages)",
                lambda ctx: ((n := _local_mail(ctx) + _shadow_for_server(ctx)) == 0, n),
            ),
        ),
        # Pausing keeps the node from *becoming* the PAM; it does not move the PAM away (the default cluster
        # group stays with its owner). The PAM is moved as a step of its own below.
        Step(
            "suspend_cluster_node",
            "Pause the cluster node (it can no longer become the PAM)",
            done=lambda ctx: _node_state(ctx) == "Paused",
            actions=lambda ctx: [Action(ctx.server, Endpoint.WINDOWS, Command.of("Suspend-ClusterNode", Name=ctx.server))],
        ),
        Step(
            "block_activation",
            "Block database activation and move active copies away",
            done=lambda ctx: (m := ctx.live.one(ctx.server, "mailbox_server")).activation_policy == "Blocked" and m.move_now,
            actions=lambda ctx: [
                Action(
                    ctx.server,
                    Endpoint.EXCHANGE,
                    Command.of(
                        "Set-MailboxServer",
                        Identity=ctx.server,
                        DatabaseCopyActivationDisabledAndMoveNow=True,
                        DatabaseCopyAutoActivationPolicy="Blocked",
                    ),
                )
            ],
        ),
        Step(
            "wait_no_mounted_copy",
            "Wait until no database copy is mounted here",
            done=lambda ctx: not _mounted_here(ctx),
            wait=Wait("mounted databases to move away", lambda ctx: (not (d := _mounted_here(ctx)), ", ".join(d) or "none")),
        ),
        # StartDagServerMaintenance.ps1 moves the critical resources after pausing: the active databases, then
        # the PAM "if the server is a PAM" (DagCommonLibrary.ps1 Move-DagActiveManager, through
        # DagTaskHelperPublic.MovePrimaryActiveManagerRole). The PAM is the owner of the default cluster group, so
        # moving "Cluster Group" moves it (Tim McMichael, Microsoft: "Exchange 2010 / 2013 - PAM and the Cluster
        # Core Resources": Move-ClusterGroup -Name "Cluster Group" -Node MBX-2). Verified by the DAG's own
        # PrimaryActiveManager (Get-DatabaseAvailabilityGroup -Status).
        Step(
            "move_cluster_group",
            "Move the default cluster group (the PAM role) to another member",
            done=lambda ctx: _pam(ctx) != ctx.server.lower(),
            actions=lambda ctx: [
                Action(ctx.server, Endpoint.WINDOWS, Command.of("Move-ClusterGroup", Name="Cluster Group", Node=_pam_target(ctx)))
            ],
            wait=Wait("the PAM role to leave the node", lambda ctx: ((p := _pam(ctx)) != ctx.server.lower(), p)),
        ),
        Step(
            "server_wide_offline",
            "Set ServerWideOffline Inactive" + (" and Monitoring Inactive" if monitoring_off else ""),
            done=lambda ctx: all(_held_by_maintenance(ctx.components()[c], "Inactive") for c in components),
            actions=lambda ctx: [
                _set_component(ctx, c, "Inactive")
                for c in components
                if not _held_by_maintenance(ctx.components()[c], "Inactive")
            ],
        ),
    ]


def _restore_policy(ctx: Ctx) -> str:
    return ctx.journal.recorded_policy() or ctx.inventory.expectations.activation_policy


def _restart_done_since_hub_active(ctx: Ctx) -> bool:
    """A transport restart leaves no trace in state, so this one is journal-based: it is needed when this
    exit makes HubTransport Active, or when a journaled activation was not followed by a restart."""
    if _held_by_maintenance(ctx.components()["HubTransport"], "Draining", "Inactive"):
        return False  # transport_active will run now, and the restart must follow it
    pending = False
    for e in ctx.journal.entries():
        if e.get("event") == "step" and e.get("outcome") == "done":
            if e.get("step") == "transport_active":
                pending = True
            elif e.get("step") == "restart_transport_exit":
                pending = False
    return not pending


def _misplaced(ctx: Ctx) -> list[tuple[str, str]]:
    """(database, preferred server) for databases not active on their most preferred available copy;
    the server being brought back counts as available (the plan is made before it is)."""
    moves = []
    seen: set[str] = set()
    available = {
        m
        for m in ctx.members()
        if m == ctx.server.lower()
        or (
            ctx.components(m)["ServerWideOffline"].state == "Active"
            and ctx.live.one(m, "mailbox_server").activation_policy != "Blocked"
        )
    }
    for member in ctx.members():
        for db in ctx.live.read(member, "databases"):
            if db.name in seen:
                continue
            seen.add(db.name)
            for server, _ in sorted(db.activation_preference, key=lambda p: p[1]):
                if server in available:
                    if db.mounted_on != server:
                        moves.append((db.name, server))
                    break
    return moves


def _dismounted(ctx: Ctx) -> list[str]:
    return sorted({db.name for m in ctx.members() for db in ctx.live.read(m, "databases") if db.mounted is False})


def _is_exchange_2016(ctx: Ctx) -> bool:
    """UMCallRouter exists on Exchange 2016 only (Unified Messaging was removed in 2019): version 15.1."""
    return ctx.live.one(ctx.server, "exchange_server").admin_display_version[:2] == (15, 1)


def _um_call_router_held(ctx: Ctx, *states: str) -> bool:
    router = ctx.components().get("UMCallRouter")
    return router is not None and _held_by_maintenance(router, *states)


def _to_resume(ctx: Ctx) -> list[DatabaseCopyStatus]:
    """This member's copies that StopDagServerMaintenance.ps1 would resume: suspended (replication), or
    suspended for activation. A lagged copy held from activation on purpose keeps that (it is resumed
    -ReplicationOnly, and not at all when only its activation is suspended); a FailedAndSuspended copy is
    left to the administrator (it needs the failure fixed or a reseed, which DAG-COPY checks report)."""
    return [
        c
        for c in ctx.live.read(ctx.server, "copies")
        if not c.active
        and c.status != "FailedAndSuspended"
        and (c.status == "Suspended" or (c.activation_suspended and not c.lagged))
    ]


def _resume_actions(ctx: Ctx) -> list[Action]:
    return [
        Action(
            ctx.server,
            Endpoint.EXCHANGE,
            Command.of(
                "Resume-MailboxDatabaseCopy",
                Identity=f"{c.database}\\{ctx.server}",
                Confirm=False,
                **_replication_only(c.lagged),
            ),
        )
        for c in _to_resume(ctx)
    ]


def exit_steps(monitoring_off: bool) -> list[Step]:
    components = ["ServerWideOffline", "Monitoring"]
    return [
        Step(
            "server_wide_online",
            "Set ServerWideOffline (and Monitoring) Active",
            done=lambda ctx: not any(_held_by_maintenance(ctx.components()[c], "Inactive") for c in components),
            actions=lambda ctx: [
                _set_component(ctx, c, "Active") for c in components if _held_by_maintenance(ctx.components()[c], "Inactive")
            ],
        ),
        # Learn's exit procedure on Exchange 2016: UMCallRouter Active (requester Maintenance) right after
        # ServerWideOffline ("Manage database availability groups", Performing maintenance on DAG members).
        Step(
            "um_call_router_active",
            "Set UMCallRouter Active (Exchange 2016)",
            done=lambda ctx: not _is_exchange_2016(ctx) or not _um_call_router_held(ctx, "Draining", "Inactive"),
            actions=lambda ctx: [_set_component(ctx, "UMCallRouter", "Active")],
        ),
        Step(
            "resume_cluster_node",
            "Resume the cluster node",
            done=lambda ctx: _node_state(ctx) == "Up",
            actions=lambda ctx: [Action(ctx.server, Endpoint.WINDOWS, Command.of("Resume-ClusterNode", Name=ctx.server))],
        ),
        Step(
            "allow_activation",
            "Stop moving databases away (MoveNow $false)",
            done=lambda ctx: not ctx.live.one(ctx.server, "mailbox_server").move_now,
            actions=lambda ctx: [
                Action(
                    ctx.server,
                    Endpoint.EXCHANGE,
                    Command.of("Set-MailboxServer", Identity=ctx.server, DatabaseCopyActivationDisabledAndMoveNow=False),
                )
            ],
        ),
        Step(
            "restore_activation_policy",
            "Restore the activation policy recorded before maintenance",
            done=lambda ctx: ctx.live.one(ctx.server, "mailbox_server").activation_policy == _restore_policy(ctx),
            actions=lambda ctx: [
                Action(
                    ctx.server,
                    Endpoint.EXCHANGE,
                    Command.of("Set-MailboxServer", Identity=ctx.server, DatabaseCopyAutoActivationPolicy=_restore_policy(ctx)),
                )
            ],
        ),
        # StopDagServerMaintenance.ps1 ends by running Resume-MailboxDatabaseCopy for the member's copies
        # (Learn, "Manage database availability groups": "Runs Resume-MailboxDatabaseCopy for each database");
        # its lagged copies are resumed -ReplicationOnly.
        Step(
            "resume_database_copies",
            "Resume this member's suspended database copies",
            done=lambda ctx: not _to_resume(ctx),
            actions=_resume_actions,
        ),
        Step(
            "transport_active",
            "Set HubTransport Active",
            done=lambda ctx: not _held_by_maintenance(ctx.components()["HubTransport"], "Draining", "Inactive"),
            actions=lambda ctx: [_set_component(ctx, "HubTransport", "Active")],
        ),
        Step(
            "restart_transport_exit",
            "Restart MSExchangeTransport so that it accepts mail again",
            done=_restart_done_since_hub_active,
            verify=lambda ctx: _transport_answers(ctx)[0],
            actions=lambda ctx: [Action(ctx.server, Endpoint.WINDOWS, Command.of("Restart-Service", Name="MSExchangeTransport"))],
            wait=Wait("transport to answer again", _transport_answers),
        ),
        Step(
            "redistribute_databases",
            "Move databases back to their activation-preference-1 servers",
            done=lambda ctx: not _misplaced(ctx),
            verify=lambda ctx: not _misplaced(ctx) and not _dismounted(ctx),
            actions=lambda ctx: [
                Action(
                    ctx.server,
                    Endpoint.EXCHANGE,
                    Command.of("Move-ActiveMailboxDatabase", Identity=db, ActivateOnServer=server, Confirm=False),
                )
                for db, server in _misplaced(ctx)
            ],
            wait=Wait(
                "databases mounted on their preferred servers",
                lambda ctx: (not (m := _misplaced(ctx)) and not _dismounted(ctx), len(m) + len(_dismounted(ctx))),
            ),
        ),
    ]


def _replication_only(lagged: bool) -> dict[str, Any]:
    """-ReplicationOnly for a lagged copy: replication resumes without changing its activation setting
    (Learn: Resume-MailboxDatabaseCopy, -ReplicationOnly)."""
    return {"ReplicationOnly": True} if lagged else {}
