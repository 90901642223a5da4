"""Build the simulated organisation an inventory describes, with its lab faults applied.

The one way to make an Organization ready to serve: the state is built first, then each fault
(data, from the inventory's lab.faults) puts it into its faulty state.
"""

from __future__ import annotations

from dagcheck.inventory import Inventory
from dagcheck.lab.clock import LabClock
from dagcheck.lab.faults import apply_fault
from dagcheck.lab.settings import lab_settings
from dagcheck.lab.state import Organization


def build_organization(inventory: Inventory, clock: LabClock | None = None) -> Organization:
    org = Organization(inventory, clock)
    for fault in lab_settings(inventory).faults:
        apply_fault(org, fault)
    return org
