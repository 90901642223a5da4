"""A component held Draining or Inactive names the requester holding it (issue 23), in every check that reports it."""

from __future__ import annotations

import datetime as dt

import pytest

from dagcheck.catalogue import CheckFailure
from dagcheck.inventory import Expectations
from dagcheck.rules.components import held_by
from dagcheck.sources.components import ComponentState, RequesterState

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def _component(name: str, state: str, **requesters: str) -> ComponentState:
    entries = tuple(RequesterState(r, s, NOW) for r, s in requesters.items())
    return ComponentState("mbx1", name, state, entries, entries)


class _Snapshot:
    def __init__(self, *components: ComponentState) -> None:
        self.components = components

    def get(self, source: str):
        assert source == "components"
        return self.components


def test_draining_names_its_draining_holder_and_inactive_its_inactive_one() -> None:
    assert (
        held_by(_component("HubTransport", "Draining", Maintenance="Draining", Functional="Active"))
        == "held Draining by requester Maintenance"
    )
    assert (
        held_by(_component("HubTransport", "Inactive", Sidelined="Inactive", Maintenance="Draining"))
        == "held Inactive by requester Sidelined"
    )
    assert held_by(_component("HubTransport", "Active", Functional="Active")) == "with no requester holding it"


def test_component_left_draining_names_its_requester() -> None:
    from checks.test_components import test_component_is_active

    hub = _component("HubTransport", "Draining", Maintenance="Draining")
    swo = _component("ServerWideOffline", "Active", Maintenance="Active")
    with pytest.raises(CheckFailure) as failure:
        test_component_is_active(hub, _Snapshot(hub, swo))
    assert "HubTransport is Draining on mbx1, held Draining by requester Maintenance" in str(failure.value)
    assert "-Requester Maintenance" in str(failure.value.remediation)


def test_component_held_inactive_in_maintenance_names_its_requester() -> None:
    from checks.test_components import test_component_is_offline_in_maintenance

    monitoring = _component("Monitoring", "Inactive", Deployment="Inactive")
    with pytest.raises(CheckFailure) as failure:
        test_component_is_offline_in_maintenance(monitoring, Expectations())
    assert "Monitoring is Inactive on mbx1 in maintenance, held Inactive by requester Deployment" in str(failure.value)
    assert "-Requester Deployment" in str(failure.value.remediation)
