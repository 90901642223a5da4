"""appcmd's listings are read line by line; a failed or unknown answer fails the source with why."""

from __future__ import annotations

import pytest

from dagcheck.errors import ParseError, RemoteError
from dagcheck.remote.base import CmdResult
from dagcheck.sources import iis_state

SITES = (
    'SITE "Default Web Site" (id:1,bindings:http/*:80:,https/*:443:,state:Started)\r\n'
    'SITE "Exchange Back End" (id:2,bindings:http/*:81:,https/*:444:,state:Stopped)\r\n'
)
POOLS = (
    'APPPOOL "MSExchangeOWAAppPool" (MgdVersion:v4.0,MgdMode:Integrated,state:Started)\r\n'
    'APPPOOL "DefaultAppPool" (MgdVersion:v4.0,MgdMode:Integrated,state:Stopped)\r\n'
)


def test_sites_and_pools_with_their_state() -> None:
    objects = iis_state.parse([CmdResult(0, SITES, ""), CmdResult(0, POOLS, "")], "MBX1.contoso.test")
    assert [(o.kind, o.name, o.state) for o in objects] == [
        ("site", "Default Web Site", "Started"),
        ("site", "Exchange Back End", "Stopped"),
        ("apppool", "MSExchangeOWAAppPool", "Started"),
        ("apppool", "DefaultAppPool", "Stopped"),
    ]
    assert objects[2].key == "mbx1:MSExchangeOWAAppPool" and objects[2].is_exchange_pool
    assert not objects[3].is_exchange_pool


def test_a_failed_appcmd_fails_the_source_with_its_message() -> None:
    with pytest.raises(RemoteError, match="Access is denied"):
        iis_state.parse([CmdResult(5, "", "Access is denied.\r\n"), CmdResult(0, POOLS, "")], "mbx1")


def test_a_line_in_no_known_form_is_an_error_naming_it() -> None:
    with pytest.raises(ParseError, match="WEBSITE"):
        iis_state.parse([CmdResult(0, 'WEBSITE "x" (state:Started)\r\n', ""), CmdResult(0, POOLS, "")], "mbx1")


def test_the_lab_answers_both_listings_from_its_state() -> None:
    from dagcheck.inventory import load_inventory
    from dagcheck.lab import faults, winrs
    from dagcheck.lab.settings import Fault
    from dagcheck.lab.state import Organization
    from tests.conftest import ROOT

    org = Organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    faults.apply_fault(org, Fault("app_pool_stopped", {"server": "mbx1", "pool": "msexchangeowaapppool"}))
    results = [CmdResult(*winrs.run(org, "mbx1", line)) for line in iis_state.COMMAND_LINES]
    states = {o.name: o.state for o in iis_state.parse(results, "mbx1")}
    assert states["Default Web Site"] == states["Exchange Back End"] == "Started"
    assert states["MSExchangeOWAAppPool"] == "Stopped" and states["MSExchangeServicesAppPool"] == "Started"
