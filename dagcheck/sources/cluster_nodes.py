"""The DAG's Windows failover cluster nodes and their state: `Get-ClusterNode` (Windows endpoint, DAG-wide).

The same answer from every member, so it is asked once per DAG and phase. State is CLUSTER_NODE_STATE
(Up, Down, Paused, Joining, Unknown; EXCHANGE-NOTES "Lessons" 7), a top-level enum (ToString + I32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import enum_value, required, short_name


@dataclass(frozen=True)
class ClusterNode:
    name: str
    state: str  # Up, Down, Paused, Joining, Unknown
    seen_from: str = ""

    @property
    def key(self) -> str:
        return self.name


CLUSTER_NODE_STATE_BY_INT = {-1: "Unknown", 0: "Up", 1: "Down", 2: "Paused", 3: "Joining"}


def parse_cluster_node(obj: Any, seen_from: str = "") -> ClusterNode:
    return ClusterNode(
        short_name(required(obj, "Get-ClusterNode", "Name")),
        enum_value(obj, "Get-ClusterNode", "State", CLUSTER_NODE_STATE_BY_INT),
        short_name(seen_from),
    )


def command(dag: str | None) -> Command:
    return Command.of("Get-ClusterNode")


SOURCE = Source("cluster_nodes", Endpoint.WINDOWS, command, parse_cluster_node, dag_wide=True)
