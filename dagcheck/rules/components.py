"""Component state rules (EXCHANGE-NOTES.md, lesson 1 and 2)."""

from __future__ import annotations

from dagcheck.model import ComponentState

INACTIVE_BY_DESIGN = frozenset({"ForwardSyncDaemon", "ProvisioningRps"})


def unexpected_inactive(state: ComponentState) -> str | None:
    """Why the component's state is not the healthy one, or None when it is."""
    if state.component in INACTIVE_BY_DESIGN:
        return None
    if state.state != "Active":
        return f"{state.component} is {state.state}"
    return None
