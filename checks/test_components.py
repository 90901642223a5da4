"""Server component states: what Exchange itself reports about each component's availability."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.model import ComponentState
from dagcheck.rules.components import unexpected_inactive


@check(
    "DAG-COMP-001",
    "No component is Inactive unless it is Inactive by design",
    severity="critical",
    rationale="An Inactive component stops its protocol or service on the server (HubTransport Inactive means "
    "no mail flow through it); ForwardSyncDaemon and ProvisioningRps are Inactive by default on premises. "
    "Any requester holding a component Inactive wins, so the requester is named.",
    remediation="Set-ServerComponentState -Identity {server} -Component <component> -State Active -Requester <requester>",
    phases=("health", "postflight"),
    source="components",
)
def test_component_is_active(item: ComponentState) -> None:
    problem = unexpected_inactive(item)
    holders = item.requesters("Inactive")
    require(
        problem is None,
        f"{item.component} is {item.state} on {item.server}"
        + (f", held Inactive by requester {', '.join(holders)}" if holders else ""),
        expected="Active",
        actual=f"{item.state} (requesters Inactive: {', '.join(holders) or 'none'})",
        remediation=" ; ".join(
            f"Set-ServerComponentState -Identity {item.server} -Component {item.component} -State Active -Requester {r}"
            for r in holders or ("Maintenance",)
        ),
    )
