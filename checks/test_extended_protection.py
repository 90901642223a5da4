"""Extended Protection per virtual directory: Microsoft's matrix, the inventory's overrides, DAG parity."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.context import DagView
from dagcheck.inventory import Expectations
from dagcheck.model import VirtualDirectory
from dagcheck.rules.dag import odd_ones_out
from dagcheck.rules.extended_protection import expected_token_checking, split_vdir_name, supports_extended_protection


def expected_for(item: VirtualDirectory, build: tuple[int, int, int, int], expect: Expectations) -> str:
    if item.name in expect.ep_overrides:
        return expect.ep_overrides[item.name]
    if not supports_extended_protection(build):
        return "None"
    vdir, site = split_vdir_name(item.name)
    return expected_token_checking(vdir, site) or "None"


@check(
    "DAG-EP-001",
    "Extended Protection token checking matches the expected matrix",
    severity="critical",
    rationale="Builds with the August 2022 SU or later support Extended Protection (2019 CU14+ enables it at "
    "setup) and expect the per-directory values of Microsoft's matrix; lower leaves NTLM relay open, higher "
    "breaks clients (Require on Autodiscover or on the PowerShell front end).",
    remediation="ExchangeExtendedProtectionManagement.ps1 (CSS-Exchange), or for one directory: "
    "Set-<Type>VirtualDirectory -Identity '{key}' -ExtendedProtectionTokenChecking <expected>",
    phases=("health", "preflight", "postflight"),
    source="vdirs",
)
def test_extended_protection_matches(item: VirtualDirectory, expect: Expectations, snapshot) -> None:
    build = snapshot.get("exsetup")[0].version
    expected = expected_for(item, build, expect)
    actual = item.token_checking or "not readable (IIS not reached)"
    higher = item.token_checking is not None and LEVELS.get(item.token_checking, 0) > LEVELS[expected]
    require(item.token_checking == expected,
            f"{item.name} on {item.server} has ExtendedProtectionTokenChecking {actual}"
            + (" — higher than expected, clients will fail to authenticate" if higher else ""),
            expected=expected, actual=actual)


LEVELS = {"None": 0, "Allow": 1, "Require": 2}


@check(
    "DAG-EP-002",
    "Extended Protection is the same on every member of the DAG",
    severity="warning",
    rationale="Clients move between members on every switchover; a directory that differs on one member "
    "fails only when the database lands there, which is the hardest failure to diagnose. The member that "
    "differs from the majority is flagged.",
    remediation="Align {key} with the other members (ExchangeExtendedProtectionManagement.ps1 on the odd one)",
    phases=("health",),
    source="vdirs",
)
def test_extended_protection_same_across_dag(item: VirtualDirectory, dag: DagView) -> None:
    values = {m: next((v.token_checking for v in vdirs if v.name == item.name), None)
              for m, vdirs in dag.each("vdirs", reachable_only=True).items()}
    odd = odd_ones_out(values)
    require(item.server not in odd, f"{item.name} is {item.token_checking} on {item.server}, unlike the DAG ("
            + ", ".join(f"{m}={v}" for m, v in values.items()) + ")",
            expected="the value the other members have", actual=str(item.token_checking))
