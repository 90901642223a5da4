"""What a check sees beyond its own object: the other members of the DAG, in the same phase.

Everything here reads memoized snapshots: a DAG-wide check adds no remote call that another check
has already made for the same server and phase.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagcheck.collect import Collector, Snapshot
from dagcheck.inventory import Inventory, Server
from dagcheck.rules.dag import choose_target, in_maintenance


@dataclass
class DagView:
    server: str
    inventory: Inventory
    collector: Collector
    phase: str
    target_override: str | None = None
    # The nightly run's judgement of a member in maintenance (dagcheck.maintenance.planned), and its now.
    maintenance: Callable[[str], Any] = lambda member: None
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    notes: list[str] = field(default_factory=list)  # lines for the run's summary (how many members are left)

    @property
    def members(self) -> list[str]:
        dag = self.inventory.dag_of(self.server)
        return [m.lower() for m in dag.members] if dag else [self.server.lower()]

    @property
    def others(self) -> list[str]:
        return [m for m in self.members if m != self.server.lower()]

    def snap(self, server: str) -> Snapshot:
        return self.collector.snapshot(server, self.phase)

    def each(self, source: str, servers: list[str] | None = None, reachable_only: bool = False) -> dict[str, tuple[Any, ...]]:
        """One source from every member (or the given ones). A member whose source failed raises
        SourceFailed (fail closed: a safety gate must not assume it is fine), unless reachable_only,
        for comparisons that the unreachable member's own checks already report."""
        members = servers if servers is not None else self.members
        if reachable_only:
            members = [m for m in members if self.snap(m).failed(source) is None]
        return {m: self.snap(m).get(source) for m in members}

    def one(self, server: str, source: str) -> Any:
        return self.snap(server).get(source)[0]

    def status(self) -> Any:
        """Get-DatabaseAvailabilityGroup -Status of the server's DAG, as the server itself answers it."""
        dag = self.inventory.dag_of(self.server)
        name = dag.name.lower() if dag else ""
        return next(d for d in self.snap(self.server).get("dag_status") if d.name.lower() == name)

    def server_info(self, name: str) -> Server:
        return self.inventory.server(name)

    def maintenance_signs(self, server: str) -> list[str]:
        snap = self.snap(server)
        return in_maintenance(server.lower(), snap.get("components"), snap.get("cluster_nodes"), snap.get("mailbox_server")[0])

    def target(self) -> str | None:
        """--target, or a member with HubTransport Active, same site first."""
        if self.target_override:
            return self.target_override.lower()
        hub = {}
        for m in self.others:
            states = {c.component: c.state for c in self.snap(m).get("components")}
            hub[m] = states.get("HubTransport") == "Active" and states.get("ServerWideOffline") == "Active"
        sites = {m: self.inventory.server(m).site for m in self.members}
        return choose_target(self.server.lower(), sites, hub, self.members)
