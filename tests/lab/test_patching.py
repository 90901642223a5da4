"""The lab's patch: a CU's setup configures Extended Protection from 2019 CU14, a security update does not (issue 23)."""

from __future__ import annotations

from dagcheck.lab import products
from dagcheck.lab.faults import apply_fault
from dagcheck.lab.patching import apply_patch
from dagcheck.lab.settings import Fault
from tests.lab.inprocess import organization as _org


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
