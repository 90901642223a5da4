"""The lease's rules in process: who counts as busy, how ties are settled, and the claim contest when a
second member claims a moment before or after this run (the race, made deterministic)."""

from __future__ import annotations

import datetime as dt

from dagcheck.rules.dag import lease_order, lease_since
from dagcheck.sources.components import ComponentState, RequesterState
from tests.unit.maintenance.test_runner import Lab

T0 = dt.datetime(2026, 11, 2, 22, 0, tzinfo=dt.UTC)


def test_lab_component_timestamps_are_distinct_and_in_call_order_at_one_lab_time(tmp_path) -> None:
    org = Lab(tmp_path).org
    a, b = org.server("mbx1"), org.server("mbx3")
    org.set_component_state(a, "HubTransport", "Maintenance", "Draining")
    org.set_component_state(b, "HubTransport", "Maintenance", "Draining")  # no lab time passes in between
    first = a.local_states["HubTransport"]["Maintenance"].timestamp
    second = b.local_states["HubTransport"]["Maintenance"].timestamp
    assert first < second


def test_lease_since_is_the_earliest_maintenance_hold_and_ties_go_by_name() -> None:
    hub = ComponentState(
        "mbx1",
        "HubTransport",
        "Draining",
        (RequesterState("Maintenance", "Draining", T0 + dt.timedelta(seconds=5)),),
        (RequesterState("Maintenance", "Draining", T0), RequesterState("Functional", "Inactive", T0 - dt.timedelta(1))),
    )
    assert lease_since([hub]) == T0
    assert lease_order(T0, "mbx1") < lease_order(T0, "mbx3") < lease_order(T0 + dt.timedelta(microseconds=1), "mbx0")
    assert lease_order(None, "mbx9") < lease_order(T0, "mbx1")  # busy by hand, no timestamp: first


def _claim_on_mbx3_around_the_drain(lab: Lab, before: bool) -> None:
    run = lab.live.run

    def racing(server, endpoint, command):
        is_claim = command.cmdlet == "Set-ServerComponentState" and command.params().get("State") == "Draining"
        if is_claim and before:
            lab.org.set_component_state(lab.org.server("mbx3"), "HubTransport", "Maintenance", "Draining")
        out = run(server, endpoint, command)
        if is_claim and not before:
            lab.org.set_component_state(lab.org.server("mbx3"), "HubTransport", "Maintenance", "Draining")
        return out

    lab.live.run = racing


def test_a_claim_made_first_elsewhere_wins_and_this_run_undoes_its_own(tmp_path) -> None:
    lab = Lab(tmp_path)
    _claim_on_mbx3_around_the_drain(lab, before=True)
    result = lab.transition("enter").run()
    assert [r.interlock for r in result.refusals] == ["one_at_a_time"]
    reason = result.refusals[0].reason
    assert "mbx3 (since 2026-" in reason and "undid its claim" in reason, reason
    s = lab.org.server("mbx1")
    assert s.component_state("HubTransport") == "Active" and s.cluster_state == "Up" and s.activation_policy == "Unrestricted"
    assert lab.changes() == [
        "Set-ServerComponentState -Identity mbx1 -Component HubTransport -State Draining -Requester Maintenance",
        "Set-ServerComponentState -Identity mbx1 -Component HubTransport -State Active -Requester Maintenance",
    ]
    assert lab.journal.where_it_stands() is None and lab.journal.recorded_policy() is None


def test_a_claim_made_later_elsewhere_loses_to_this_run(tmp_path) -> None:
    lab = Lab(tmp_path)
    _claim_on_mbx3_around_the_drain(lab, before=False)
    result = lab.transition("enter").run()
    assert result.ok, (result.refusals, result.error)
    lab.assert_in_maintenance()
