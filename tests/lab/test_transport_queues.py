"""The lab's transport queues: a backlog drains as time passes, Get-Queue fails while transport restarts,
Redirect-Message moves mail but not a stuck queue.

The lab's clock ticks on every call; at fleet scale a tick must touch only the servers whose mail is in
flight (issue 14: "does not loop over the whole organisation per call"), and still miss none of them."""

from __future__ import annotations

import pytest

from dagcheck.errors import CmdletFailed
from dagcheck.inventory import load_inventory, parse_inventory
from dagcheck.lab import persist
from dagcheck.lab.build import build_organization
from dagcheck.lab.faults import apply_fault
from dagcheck.lab.fleet import fleet_inventory
from dagcheck.lab.inprocess import InProcessTransport
from dagcheck.lab.objects import LabQueue, LabServer
from dagcheck.lab.settings import Fault
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.queues import parse_queue
from tests.conftest import ROOT
from tests.lab import inprocess


@pytest.fixture
def fleet():
    org = build_organization(parse_inventory(fleet_inventory(300)))
    return org, InProcessTransport(org)


@pytest.fixture
def lab():
    return inprocess.lab()


def _queued(t: InProcessTransport, server: str) -> int:
    queues = [parse_queue(o, server) for o in t.run(server, Endpoint.EXCHANGE, Command.of("Get-Queue", Server=server))]
    return sum(q.message_count for q in queues if q.kind not in ("Poison", "Shadow"))


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times each server's queues are read, by anything (a tick, or the cmdlet itself)."""
    seen: dict[str, int] = {}
    original = LabServer.__getattribute__

    def counted(server: LabServer, name: str):  # type: ignore[no-untyped-def]
        if name == "queues":
            who = original(server, "name")
            seen[who] = seen.get(who, 0) + 1
        return original(server, name)

    monkeypatch.setattr(LabServer, "__getattribute__", counted)
    return seen


def test_a_quiet_fleet_call_touches_no_server_after_the_first_scan(fleet, monkeypatch) -> None:
    org, t = fleet
    first = org.servers[next(iter(org.servers))].name
    _queued(t, first)  # the first tick scans the organisation once
    seen = _count_reads(monkeypatch)
    for _ in range(20):
        _queued(t, first)
    others = {name for name in seen if name != first}  # Get-Queue reads its own server's queues
    assert not others, f"20 calls on a quiet 300-server lab read the queues of {len(others)} other servers"


def test_mail_given_to_a_quiet_server_later_still_drains_and_only_it_is_touched(fleet, monkeypatch) -> None:
    org, t = fleet
    names = [s.name for s in org.servers.values()]
    _queued(t, names[0])
    apply_fault(org, Fault("mail_backlog", {"server": names[250], "count": 40}))  # after the scan
    seen = _count_reads(monkeypatch)
    counts = [_queued(t, names[250]) for _ in range(6)]
    assert counts[0] < 40 and counts == sorted(counts, reverse=True) and counts[-1] == 0
    # the rescan after the fault reads every server once; from then on only the one with mail in flight
    assert set(seen) == set(names) and seen[names[250]] > 6 and all(n == 1 for k, n in seen.items() if k != names[250])


def test_a_restored_lab_rescans_and_a_queue_made_by_hand_is_seen(fleet) -> None:
    org, t = fleet
    names = [s.name for s in org.servers.values()]
    _queued(t, names[0])
    restored = persist.restore(persist.dump(org))
    assert getattr(restored, "flow", None) is None  # not saved: rebuilt by its first tick
    server = restored.servers[names[7].lower()]
    server.queues.append(LabQueue(9999, "Delivery", "SmtpRelayToRemoteActiveDirectorySite", "Site-B"))
    server.queues[-1].message_count = 30  # an attribute write after the append
    t2 = InProcessTransport(restored)
    counts = [_queued(t2, names[7]) for _ in range(4)]
    assert counts[0] < 30 and counts[-1] == 0


def test_transport_restart_makes_get_queue_fail_until_transport_is_back(lab) -> None:
    org, t = lab
    t.run("mbx1", Endpoint.WINDOWS, Command.of("Restart-Service", Name="MSExchangeTransport"))
    with pytest.raises(CmdletFailed, match="Failed to connect to the Microsoft Exchange Transport service"):
        t.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-Queue", Server="mbx1"))
    org.clock.advance(60)
    assert t.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-Queue", Server="mbx1"))


def _queue_total(t, server: str) -> int:
    queues = [parse_queue(o, server) for o in t.run(server, Endpoint.EXCHANGE, Command.of("Get-Queue", Server=server))]
    return sum(q.message_count for q in queues if q.kind not in ("Poison", "Shadow"))


def test_time_passes_with_each_call_and_a_backlog_drains() -> None:
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    org = build_organization(inventory)
    apply_fault(org, Fault("mail_backlog", {"server": "mbx1", "count": 50}))
    t = InProcessTransport(org)
    start = org.now()
    counts = [_queue_total(t, "mbx1") for _ in range(6)]
    assert counts[0] < 50 and counts == sorted(counts, reverse=True) and counts[-1] == 0
    assert (org.now() - start).total_seconds() == 6 * 5


def test_redirect_moves_mail_but_not_a_stuck_queue_and_then_clears_shadows(lab) -> None:
    org, t = lab
    apply_fault(org, Fault("mail_backlog", {"server": "mbx1", "count": 500}))
    apply_fault(org, Fault("shadow_queue", {"server": "mbx1", "value": "mbx2", "count": 4}))
    t.run("mbx1", Endpoint.EXCHANGE, Command.of("Redirect-Message", Server="mbx1", Target="mbx2.lab.contoso.test"))
    assert _queue_total(t, "mbx1") < 500
    for _ in range(10):
        _queue_total(t, "mbx1")
    assert _queue_total(t, "mbx1") == 0
    shadows = [parse_queue(o, "mbx2") for o in t.run("mbx2", Endpoint.EXCHANGE, Command.of("Get-Queue", Server="mbx2"))]
    assert [q.message_count for q in shadows if q.kind == "Shadow"] == [0]
    org2 = build_organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    apply_fault(org2, Fault("stuck_queue", {"server": "mbx3", "count": 25}))
    t2 = InProcessTransport(org2)
    t2.run("mbx3", Endpoint.EXCHANGE, Command.of("Redirect-Message", Server="mbx3", Target="mbx4"))
    assert [_queue_total(t2, "mbx3") for _ in range(5)] == [25] * 5
