"""Server component states: what Exchange itself reports about each component's availability."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.collect import Snapshot
from dagcheck.inventory import Expectations
from dagcheck.rules.components import held_by, holders, unexpected_inactive
from dagcheck.sources.components import ComponentState


@check(
    "DAG-COMP-001",
    "No component is Inactive unless it is Inactive by design",
    severity="critical",
    rationale="An Inactive component stops its protocol or service on the server (HubTransport Inactive means "
    "no mail flow through it); ForwardSyncDaemon and ProvisioningRps are Inactive by default on premises. "
    "Any requester holding a component Inactive wins, so the requester is named.",
    remediation="Set-ServerComponentState -Identity {server} -Component <component> -State Active -Requester <requester>",
    phases=("health", "preflight", "postflight"),
    source="components",
)
def test_component_is_active(item: ComponentState, snapshot: Snapshot) -> None:
    problem = unexpected_inactive(item)
    # Draining or Inactive, the requesters holding it in that state are named (issue 23).
    held = holders(item)
    swo = next(c for c in snapshot.get("components") if c.component == "ServerWideOffline")
    if not held and item.component != "ServerWideOffline" and swo.state != "Active":
        # No requester of its own: ServerWideOffline switches it off (EXCHANGE-NOTES lesson 2).
        cause = f"because ServerWideOffline is {swo.state} (requester {', '.join(holders(swo)) or 'unknown'})"
        fixes = [
            f"Set-ServerComponentState -Identity {item.server} -Component ServerWideOffline -State Active -Requester {r}"
            for r in holders(swo) or ("Maintenance",)
        ]
    else:
        cause = held_by(item)
        fixes = [
            f"Set-ServerComponentState -Identity {item.server} -Component {item.component} -State Active -Requester {r}"
            for r in held or ("Maintenance",)
        ]
    require(
        problem is None,
        f"{item.component} is {item.state} on {item.server}, {cause}",
        expected="Active",
        actual=f"{item.state} ({cause})",
        remediation=" ; ".join(fixes),
    )


@check(
    "DAG-COMP-002",
    "In maintenance every component is Inactive but Monitoring and RecoveryActionsEnabled",
    severity="critical",
    rationale="ServerWideOffline Inactive (requester Maintenance) takes every protocol off the server; "
    "Monitoring and RecoveryActionsEnabled stay Active unless the inventory asks for Monitoring off too.",
    remediation="Set-ServerComponentState -Identity {server} -Component ServerWideOffline -State Inactive -Requester Maintenance",
    phases=("maintenance",),
    source="components",
)
def test_component_is_offline_in_maintenance(item: ComponentState, expect: Expectations) -> None:
    stays_active = {"RecoveryActionsEnabled"} | (set() if expect.monitoring_inactive_in_maintenance else {"Monitoring"})
    expected = "Active" if item.component in stays_active else "Inactive"
    # A component held Draining or Inactive names its requester (issue 23): the one to set back.
    held = f", {held_by(item)}" if item.state != "Active" else ""
    require(
        item.state == expected,
        f"{item.component} is {item.state} on {item.server} in maintenance{held}",
        expected=expected,
        actual=item.state,
        remediation=None
        if expected == "Inactive"
        else " ; ".join(
            f"Set-ServerComponentState -Identity {item.server} -Component {item.component} -State Active -Requester {r}"
            for r in holders(item) or ("Maintenance",)
        ),
    )


@check(
    "DAG-COMP-003",
    "Local (registry) and remote (AD) component states agree",
    severity="warning",
    rationale="Exchange merges the registry and Active Directory copies of each requester's state, the newer "
    "winning; when they disagree a later AD replication or restart can flip the component unexpectedly.",
    remediation="Set the component again for that requester so both stores agree: Set-ServerComponentState "
    "-Identity {server} -Component <component> -State <state> -Requester <requester>",
    phases=("health", "preflight", "postflight"),
    source="components",
)
def test_local_and_remote_states_agree(item: ComponentState) -> None:
    local = {r.requester: r.state for r in item.local}
    remote = {r.requester: r.state for r in item.remote}
    differ = sorted(r for r in set(local) & set(remote) if local[r] != remote[r])
    require(
        not differ,
        f"{item.component} on {item.server}: "
        + "; ".join(f"{r} is {local[r]} in the registry but {remote[r]} in AD" for r in differ),
        expected="the same state per requester in both stores",
        actual=", ".join(differ),
    )
