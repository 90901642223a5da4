"""DAG-wide arithmetic: quorum, redundancy, who is in maintenance, which server takes the mail.

Pure functions over the sources' dataclasses, so each can be unit-tested and each check stays one assert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dagcheck.sources.cluster_nodes import ClusterNode
from dagcheck.sources.components import ComponentState
from dagcheck.sources.dags import DagStatus
from dagcheck.sources.database_copies import DatabaseCopyStatus
from dagcheck.sources.mailbox_servers import MailboxServer

REDUNDANT_STATUSES = ("Healthy", "DisconnectedAndHealthy", "SeedingSource")
EXEMPT_FROM_SWO = ("ServerWideOffline", "Monitoring", "RecoveryActionsEnabled")


@dataclass(frozen=True)
class Quorum:
    votes_present: int
    votes_total: int
    witness_counted: bool

    @property
    def has_quorum(self) -> bool:
        return self.votes_present * 2 > self.votes_total


def quorum_after_pausing(nodes: Iterable[ClusterNode], paused: str, status: DagStatus) -> Quorum:
    """Votes with `paused` down: the other nodes that are Up, plus the witness when it is in use.

    A Paused node keeps its vote (pausing only stops it from owning groups); it loses the vote when the
    server reboots or ClusSvc stops, which is what maintenance does next, so the gate counts the node as down.
    Other members found Paused are not counted either: they are in maintenance and may go down as well.

    Node majority with a file share witness for an even member count (what a DAG configures);
    dynamic quorum is ignored on purpose: the gate asks whether the static majority survives.
    """
    nodes = list(nodes)
    witness_used = len(nodes) % 2 == 0 and bool(status.witness_server)
    witness_ok = status.witness_share_in_use in ("Primary", "Alternate")
    present = sum(1 for n in nodes if n.state == "Up" and n.name != paused)
    total = len(nodes) + (1 if witness_used else 0)
    return Quorum(present + (1 if witness_used and witness_ok else 0), total, witness_used and witness_ok)


def in_maintenance(
    server: str, components: Iterable[ComponentState], nodes: Iterable[ClusterNode], mailbox: MailboxServer | None
) -> list[str]:
    """The signs that a server is (partly) in maintenance; empty when it is fully in service.

    A member counts as busy from the first step of entering (HubTransport Draining by requester
    Maintenance): this is the DAG-wide maintenance lease every dagcheck reads (see `lease_since`)."""
    components = list(components)
    signs = []
    swo = next((c for c in components if c.component == "ServerWideOffline"), None)
    if swo is not None and swo.state != "Active":
        signs.append(f"ServerWideOffline {swo.state}")
    node = next((n for n in nodes if n.name == server), None)
    if node is not None and node.state == "Paused":
        signs.append("cluster node Paused")
    if mailbox is not None and mailbox.activation_policy == "Blocked":
        signs.append("DatabaseCopyAutoActivationPolicy Blocked")
    if mailbox is not None and mailbox.move_now:
        signs.append("DatabaseCopyActivationDisabledAndMoveNow set")
    for c in components:
        held = [s for s in ("Draining", "Inactive") if "Maintenance" in c.requesters(s)]
        if held and c.component != "ServerWideOffline":
            signs.append(f"{c.component} {held[0]} by requester Maintenance")
    return signs


def lease_since(components: Iterable[ComponentState]) -> dt.datetime | None:
    """When the server's maintenance began, by Exchange's own data: the earliest timestamp of a
    requester-Maintenance entry that holds a component non-Active (local or remote store). Every host
    reads the same value through Get-ServerComponentState, so it settles who came first. None when no
    component is held by Maintenance (or its timestamps could not be read)."""
    stamps = [
        r.timestamp
        for c in components
        for r in (*c.local, *c.remote)
        if r.requester == "Maintenance" and r.state in ("Draining", "Inactive") and r.timestamp is not None
    ]
    return min(stamps) if stamps else None


def lease_order(since: dt.datetime | None, server: str) -> tuple[int, dt.datetime | None, str]:
    """Sort key of a maintenance lease: earlier first, ties by server name. A member busy without a
    readable Maintenance timestamp (paused by hand, Blocked by hand) sorts before every timed claim:
    it was there first as far as anyone can tell."""
    return (0, None, server) if since is None else (1, since, server)


def redundant_copies(
    database: str,
    server: str,
    copies_by_server: Mapping[str, Iterable[DatabaseCopyStatus]],
    mailbox_servers: Mapping[str, MailboxServer],
    maintenance: Mapping[str, list[str]],
    copy_queue_max: int,
    replay_queue_max: int,
) -> tuple[list[str], list[str]]:
    """(copies that can take over, why each other copy cannot) for a database active on `server`."""
    good: list[str] = []
    refused: list[str] = []
    for other, copies in copies_by_server.items():
        if other == server:
            continue
        for c in copies:
            if c.database != database:
                continue
            why = []
            if c.status not in REDUNDANT_STATUSES:
                why.append(f"status {c.status}")
            if c.lagged:
                why.append("lagged copy")
            if c.activation_suspended:
                why.append("activation suspended")
            mbx = mailbox_servers.get(other)
            if mbx is not None and mbx.activation_policy == "Blocked":
                why.append("server activation Blocked")
            if maintenance.get(other):
                why.append("server in maintenance (" + ", ".join(maintenance[other]) + ")")
            if c.copy_queue > copy_queue_max:
                why.append(f"copy queue {c.copy_queue}")
            if c.replay_queue > replay_queue_max:
                why.append(f"replay queue {c.replay_queue}")
            (refused if why else good).append(f"{c.key}" + (f": {', '.join(why)}" if why else ""))
    return good, refused


def choose_target(server: str, site_of: Mapping[str, str], hub_active: Mapping[str, bool], members: Iterable[str]) -> str | None:
    """The member that takes the server's messages: HubTransport Active, same AD site first."""
    candidates = [m for m in members if m != server and hub_active.get(m)]
    same_site = [m for m in candidates if site_of.get(m) == site_of.get(server)]
    chosen = same_site or candidates
    return chosen[0] if chosen else None


def odd_ones_out(values: Mapping[str, object]) -> dict[str, object]:
    """Members whose value differs from the DAG's majority value; with no strict majority, every member
    that differs from any other is odd (nobody can say which side is right)."""
    counts: dict[object, int] = {}
    for v in values.values():
        counts[v] = counts.get(v, 0) + 1
    if len(counts) <= 1:
        return {}
    best = max(counts.values())
    leaders = [v for v, c in counts.items() if c == best]
    if len(leaders) == 1 and best * 2 > len(values):
        return {m: v for m, v in values.items() if v != leaders[0]}
    return dict(values)


def unserved_without(
    member: str, copies_by_server: Mapping[str, Iterable[DatabaseCopyStatus]], held: Iterable[str] | None = None
) -> list[str]:
    """The databases with a copy on `member` that no other member has Mounted: with the member down
    (planned maintenance) they are dismounted, or about to be. Each entry says where its copies stand.
    held: the member's databases when its own copies could not be read (from the others' view)."""
    mine = sorted({c.database for c in copies_by_server.get(member, ())} | set(held or ()))
    lacking = []
    for database in mine:
        elsewhere = [c for other, copies in copies_by_server.items() if other != member for c in copies if c.database == database]
        if not any(c.status == "Mounted" for c in elsewhere):
            lacking.append(f"{database} ({', '.join(f'{c.server} {c.status}' for c in elsewhere) or 'no other copy'})")
    return lacking
