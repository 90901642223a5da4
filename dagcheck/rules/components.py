"""Component state rules (EXCHANGE-NOTES.md, lesson 1 and 2)."""

from __future__ import annotations

from dagcheck.sources.components import ComponentState

INACTIVE_BY_DESIGN = frozenset({"ForwardSyncDaemon", "ProvisioningRps"})


def unexpected_inactive(state: ComponentState) -> str | None:
    """Why the component's state is not the healthy one, or None when it is."""
    if state.component in INACTIVE_BY_DESIGN:
        return None
    if state.state != "Active":
        return f"{state.component} is {state.state}"
    return None


def holders(state: ComponentState) -> tuple[str, ...]:
    """The requesters holding a component in its state when that is Inactive or Draining (any requester
    Inactive makes it Inactive, else any Draining makes it Draining: EXCHANGE-NOTES lesson 2), so a
    Draining component names its Draining holders and an Inactive one its Inactive holders."""
    return state.requesters(state.state) if state.state in ("Inactive", "Draining") else ()


def held_by(state: ComponentState) -> str:
    """'held Draining by requester Maintenance', or why no requester is named."""
    names = holders(state)
    return f"held {state.state} by requester {', '.join(names)}" if names else "with no requester holding it"
