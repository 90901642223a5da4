"""The lab's own defaults where Microsoft's documentation says otherwise than it did (issue 23): receive
connector authentication, vdir authentication, and a CU patch that configures Extended Protection."""

from __future__ import annotations

from dagcheck import model
from dagcheck.inventory import parse_inventory
from dagcheck.lab import products
from dagcheck.lab.build import build_organization
from dagcheck.lab.faults import apply_fault
from dagcheck.lab.inprocess import InProcessTransport
from dagcheck.lab.patching import apply_patch
from dagcheck.lab.settings import Fault
from dagcheck.remote.base import Command, Endpoint
from tests.conftest import lab_data


def _org(build: str | None = None):
    data = lab_data()
    if build:
        data["lab"]["build"] = build
    return build_organization(parse_inventory(data, "lab.yml"))


def _auth(org, cmdlet: str) -> tuple[str, ...]:
    objs = InProcessTransport(org).run("mbx1", Endpoint.EXCHANGE, Command.of(cmdlet, Server="mbx1"))
    return model.parse_virtual_directory(objs[0], "mbx1").internal_auth


def test_default_receive_connector_does_not_require_tls_for_basic_auth() -> None:
    org = _org()
    objs = InProcessTransport(org).run("mbx1", Endpoint.EXCHANGE, Command.of("Get-ReceiveConnector", Server="mbx1"))
    auth = {c.name: c.auth_mechanism for c in (model.parse_receive_connector(o, "mbx1") for o in objs)}
    assert "BasicAuthRequireTLS" not in auth["Default MBX1"] and "BasicAuth" in auth["Default MBX1"]
    assert "BasicAuthRequireTLS" in auth["Client Frontend MBX1"]


def test_vdir_authentication_follows_learn() -> None:
    org = _org()
    assert _auth(org, "Get-ActiveSyncVirtualDirectory") == ("Basic",)
    assert "Basic" in _auth(org, "Get-AutodiscoverVirtualDirectory")
    assert "WSSecurity" in _auth(org, "Get-WebServicesVirtualDirectory")
    assert _auth(org, "Get-PowerShellVirtualDirectory") == ("Kerberos",)


def _in_maintenance_without_ep(build: str):
    org = _org(build)
    apply_fault(org, Fault("in_maintenance", {"server": "mbx1"}))
    apply_fault(org, Fault("ep_mismatch", {"server": "mbx1", "vdir": "ecp (Default Web Site)", "value": "None"}))
    return org


def test_a_cu_patch_from_2019_cu14_turns_extended_protection_on() -> None:
    org = _in_maintenance_without_ep("15.2.1258.12")  # 2019 CU13
    done = apply_patch(org, "mbx1", "15.2.1748.10")  # 2019 CU15: setup configures EP
    assert org.server("mbx1").iis[(products.FRONT_END, "ecp")].token_checking == "Require"
    assert "setup configured Extended Protection" in done


def test_a_security_update_leaves_extended_protection_as_it_is() -> None:
    org = _in_maintenance_without_ep("15.2.1748.10")
    apply_patch(org, "mbx1", "15.2.1748.49")  # CU15 Aug26SU: no setup run
    assert org.server("mbx1").iis[(products.FRONT_END, "ecp")].token_checking == "None"
