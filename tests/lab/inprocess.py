"""lab.yml's organisation behind the in-process transport (answers still CLIXML round-tripped, no socket):
what the lab's semantic tests share, one file per Exchange area."""

from __future__ import annotations

from dagcheck.inventory import load_inventory, parse_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.inprocess import InProcessTransport
from dagcheck.lab.state import Organization
from tests.conftest import ROOT, lab_data


def lab() -> tuple[Organization, InProcessTransport]:
    """(org, transport) for one test: a file's `lab` fixture returns it, overriding tests/conftest.py's
    LabServer for that file."""
    org = build_organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    return org, InProcessTransport(org)


def organization(build: str | None = None) -> Organization:
    """lab.yml's organisation, every server at `build` when given."""
    data = lab_data()
    if build:
        data["lab"]["build"] = build
    return build_organization(parse_inventory(data, "lab.yml"))
