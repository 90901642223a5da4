"""Fleet scale (issue 14): what a run asks of each server and each DAG, the per-server budget of
concurrent calls, and the lab's latency model. Figures (wall time, CPU, RSS) are printed by
benchmarks/fleet.py, never asserted here."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from dagcheck.errors import InventoryError
from dagcheck.inventory import parse_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.embedded import lab_connection
from dagcheck.lab.fleet import REALISTIC_LATENCY, fleet_inventory
from dagcheck.lab.server import LabServer
from dagcheck.lab.settings import LabLatency, lab_settings
from dagcheck.remote.base import Command, Endpoint, Transcript
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.psrp import PsrpTransport

DAG_WIDE = ("Get-DatabaseAvailabilityGroup", "Get-ClusterNode", "Get-AuthConfig")


def _per_server(calls: list[tuple[str, str, str]]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for server, endpoint, line in calls:
        if not line.startswith(DAG_WIDE):
            # The health pages' URLs name each server's own endpoint (in the lab, its loopback port).
            line = re.sub(r"https?://[^/']+/", "https://<server>/", line)
            out.setdefault(server, Counter())[f"{endpoint} {line.replace(server, '<server>')}"] += 1
    return out


def test_dag_wide_sources_are_asked_once_per_dag(run_checks) -> None:
    data = fleet_inventory(7, dag_size=4)  # DAG01: 4 members, DAG02: 3
    result = run_checks(data)
    assert result.exit_code == 0, sorted(result.failed())[:5]
    dag_status = [c for c in result.calls if c[2].startswith("Get-DatabaseAvailabilityGroup")]
    assert sorted(c[2] for c in dag_status) == [
        "Get-DatabaseAvailabilityGroup -Identity DAG01 -Status",
        "Get-DatabaseAvailabilityGroup -Identity DAG02 -Status",
    ]
    assert len([c for c in result.calls if c[2] == "Get-ClusterNode"]) == 2
    # ...and every member's DAG checks still ran, on the shared answer
    assert any("test_cluster_node_up" in n and "ex02m03" in n for n in result.outcomes)


def test_calls_per_server_do_not_grow_with_the_checks(run_checks) -> None:
    data = fleet_inventory(5, dag_size=5)
    every = run_checks(data)
    few = run_checks(data, "-k", "copy or queue")
    assert every.exit_code == 0 and few.exit_code == 0
    assert len(few.outcomes) < len(every.outcomes) / 3
    full, narrow = _per_server(every.calls), _per_server(few.calls)
    assert full == narrow  # the same calls, whatever number of checks reads them
    assert max(n for c in full.values() for n in c.values()) == 1
    assert len({frozenset(c.items()) for c in full.values()}) == 1  # and the same for every server


def test_dag_wide_source_falls_back_to_another_member(run_checks) -> None:
    data = fleet_inventory(4, dag_size=4)
    data["lab"]["faults"] = [{"kind": "cmdlet_error", "server": "ex01m01", "cmdlet": "Get-DatabaseAvailabilityGroup"}]
    result = run_checks(data, "-k", "operational")
    asked = [c[0] for c in result.calls if c[2].startswith("Get-DatabaseAvailabilityGroup")]
    assert asked[0] == "ex01m01" and len(asked) == 2 and asked[1] != "ex01m01"
    assert result.exit_code == 0 and result.outcomes


def _lab_transport(server: LabServer, inventory, max_runspaces: int) -> PsrpTransport:
    servers = {
        s.name: dataclasses.replace(
            s,
            connection=dataclasses.replace(
                lab_connection(s.connection, server.exchange_uri(s.name), server.windows_uri(s.name)), max_runspaces=max_runspaces
            ),
        )
        for s in inventory.servers
    }
    creds = {n: Credentials(server.credentials.username, server.credentials.password) for n in servers}
    return PsrpTransport(servers, Transcript(), credentials=creds)


def _most_at_once(transcript: Transcript) -> int:
    edges = sorted(
        [(i.started, 1) for i in transcript.invocations] + [(i.started + i.duration, -1) for i in transcript.invocations]
    )
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


@pytest.mark.parametrize("budget", [1, 3])
def test_calls_on_one_server_stay_within_its_budget(budget: int) -> None:
    """connection.max_runspaces calls at once on one server (pipelines of one pool side by side), never more."""
    inventory = parse_inventory(fleet_inventory(1, latency={"cmdlet": 0.4}))
    with LabServer(build_organization(inventory), latency=lab_settings(inventory).latency) as server:
        transport = _lab_transport(server, inventory, budget)
        transport.run("ex01m01", Endpoint.EXCHANGE, Command.of("Get-ExchangeServer", Identity="ex01m01"))  # open
        first = len(transport.transcript.invocations)
        try:
            with ThreadPoolExecutor(max_workers=6) as pool:
                results = list(
                    pool.map(
                        lambda _: transport.run(
                            "ex01m01", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="ex01m01")
                        ),
                        range(6),
                    )
                )
        finally:
            transport.close()
    assert all(len(r) == 1 for r in results)
    del transport.transcript.invocations[:first]
    assert _most_at_once(transport.transcript) == budget


def test_latency_model_from_the_inventory() -> None:
    inventory = parse_inventory(fleet_inventory(1, latency=REALISTIC_LATENCY))
    assert lab_settings(inventory).latency == LabLatency(2.0, 0.3, 3.0, 0.3, 0.1)
    lab = LabServer(build_organization(inventory), latency=lab_settings(inventory).latency)
    assert 3.0 <= lab.latency_for("cmdlet", "Test-ServiceHealth") <= 3.1
    assert 0.3 <= lab.latency_for("cmdlet", "Get-Queue") <= 0.4
    assert 2.0 <= lab.latency_for("runspace_open") <= 2.1 and 0.3 <= lab.latency_for("winrs") <= 0.4
    assert LabServer(build_organization(parse_inventory(fleet_inventory(1)))).latency_for("cmdlet", "Get-Queue") == 0
    bad = fleet_inventory(1, latency={"cmdlet": -1})
    with pytest.raises(InventoryError, match="lab.latency.cmdlet"):
        parse_inventory(bad)


def test_latency_is_spent_per_request_not_under_a_lock() -> None:
    """Two servers' slow calls overlap: the lab sleeps on each pipeline's own thread."""
    inventory = parse_inventory(fleet_inventory(2, latency={"cmdlet": 0.5}))
    with LabServer(build_organization(inventory), latency=lab_settings(inventory).latency) as server:
        transport = _lab_transport(server, inventory, 1)
        barrier = threading.Barrier(2)

        def one(name: str) -> None:
            transport.run(name, Endpoint.EXCHANGE, Command.of("Get-ExchangeServer", Identity=name))  # open
            barrier.wait()
            transport.run(name, Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity=name))

        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(one, ["ex01m01", "ex01m02"]))
        finally:
            transport.close()
    second = [i for i in transport.transcript.invocations if i.command.cmdlet == "Get-MailboxServer"]
    del transport.transcript.invocations[:]
    transport.transcript.invocations.extend(second)
    assert _most_at_once(transport.transcript) == 2
