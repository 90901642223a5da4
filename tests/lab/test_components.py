"""The lab's server components: ServerWideOffline and the requesters, through the in-process transport
(still CLIXML round-tripped)."""

from __future__ import annotations

import pytest

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.components import parse_component_state
from tests.lab import inprocess


@pytest.fixture
def lab():
    return inprocess.lab()


def _components(t, server):
    objs = t.run(server, Endpoint.EXCHANGE, Command.of("Get-ServerComponentState", Identity=server))
    return {c.component: c for c in (parse_component_state(o) for o in objs)}


def test_server_wide_offline_turns_every_component_but_monitoring_inactive(lab) -> None:
    _, t = lab
    t.run(
        "mbx1",
        Endpoint.EXCHANGE,
        Command.of(
            "Set-ServerComponentState", Identity="mbx1", Component="ServerWideOffline", State="Inactive", Requester="Maintenance"
        ),
    )
    states = _components(t, "mbx1")
    assert states["ServerWideOffline"].state == "Inactive"
    assert states["HubTransport"].state == "Inactive" and states["OwaProxy"].state == "Inactive"
    assert states["Monitoring"].state == "Active" and states["RecoveryActionsEnabled"].state == "Active"
    assert states["ServerWideOffline"].requesters("Inactive") == ("Maintenance",)


def test_any_requester_inactive_wins(lab) -> None:
    _, t = lab
    for requester, state in (("HealthApi", "Inactive"), ("Maintenance", "Active")):
        t.run(
            "mbx2",
            Endpoint.EXCHANGE,
            Command.of("Set-ServerComponentState", Identity="mbx2", Component="HubTransport", State=state, Requester=requester),
        )
    hub = _components(t, "mbx2")["HubTransport"]
    assert hub.state == "Inactive" and hub.requesters("Inactive") == ("HealthApi",)
