"""Extended Protection per virtual directory: Microsoft's matrix, the inventory's overrides, DAG parity,
and IIS's own configuration (applicationHost.config) for every directory of both web sites."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.context import DagView
from dagcheck.inventory import Expectations
from dagcheck.rules.dag import odd_ones_out
from dagcheck.rules.extended_protection import (
    MITIGATION_SUPPORTED,
    cmdlet_name,
    expected_token_checking,
    has_cmdlet_view,
    judge_location,
    judge_ssl_flags,
    split_vdir_name,
    supports_extended_protection,
)
from dagcheck.sources.iis_config import IisLocation
from dagcheck.sources.outlook_anywhere import OutlookAnywhere
from dagcheck.sources.virtual_directories import VirtualDirectory


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
    vdir, site = split_vdir_name(item.name)
    if expected == "Require" and (site, vdir.lower()) in MITIGATION_SUPPORTED and snapshot.failed("iis") is None:
        # The supported IP-filter mitigation stands in for EP here; only IIS's configuration shows it.
        iis = next((loc for loc in snapshot.get("iis") if (loc.site, loc.vdir.lower()) == (site, vdir.lower())), None)
        if iis is not None and iis.ip_allow_list and item.token_checking == iis.token_checking:
            return
    higher = item.token_checking is not None and LEVELS.get(item.token_checking, 0) > LEVELS[expected]
    require(
        item.token_checking == expected,
        f"{item.name} on {item.server} has ExtendedProtectionTokenChecking {actual}"
        + (" — higher than expected, clients will fail to authenticate" if higher else ""),
        expected=expected,
        actual=actual,
    )


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
    values = {
        m: next((v.token_checking for v in vdirs if v.name == item.name), None)
        for m, vdirs in dag.each("vdirs", reachable_only=True).items()
    }
    odd = odd_ones_out(values)
    require(
        item.server not in odd,
        f"{item.name} is {item.token_checking} on {item.server}, unlike the DAG ("
        + ", ".join(f"{m}={v}" for m, v in values.items())
        + ")",
        expected="the value the other members have",
        actual=str(item.token_checking),
    )


@check(
    "DAG-EP-003",
    "Extended Protection in IIS (applicationHost.config) matches the matrix on every directory of both sites",
    severity="critical",
    rationale="IIS enforces what applicationHost.config says, per <location> of both web sites; the cmdlets do "
    "not show the back end's mapi/emsmdb, mapi/nspi, Rpc, RpcWithCert, PushNotifications or API, which is why "
    "HealthChecker reads the file. On Exchange Back End/EWS an IP allow-list (ipSecurity allowUnlisted=false) "
    "is the supported alternative to Require.",
    remediation="ExchangeExtendedProtectionManagement.ps1 (CSS-Exchange) on {server}; for EWS on the back end "
    "with known incompatible clients: ExchangeExtendedProtectionManagement.ps1 -RestrictType EWSBackend "
    "-IPRangeFilePath <file> ({key})",
    phases=("health", "preflight", "postflight"),
    source="iis",
)
def test_iis_extended_protection_matches(item: IisLocation, expect: Expectations, snapshot) -> None:
    verdict = judge_location(item, snapshot.get("exsetup")[0].version, expect.ep_overrides)
    require(verdict.ok, verdict.message, expected=verdict.expected, actual=verdict.actual)


@check(
    "DAG-EP-004",
    "The cmdlets' Extended Protection agrees with IIS's configuration",
    severity="warning",
    rationale="Get-*VirtualDirectory and applicationHost.config should tell the same story; when they differ, "
    "a change was made past Exchange (IIS Manager, appcmd, a restored config) or one view is stale, and "
    "whatever was checked from the other view is in doubt.",
    remediation="Compare Get-<Type>VirtualDirectory -Server {server} -ShowMailboxVirtualDirectories with IIS "
    "Manager for {key}; set the intended value with Set-<Type>VirtualDirectory -ExtendedProtectionTokenChecking",
    phases=("health",),
    source="iis",
    select=has_cmdlet_view,
)
def test_cmdlet_and_iis_agree_on_extended_protection(item: IisLocation, snapshot) -> None:
    name = cmdlet_name(item.site, item.vdir)
    view = next((v for v in snapshot.get("vdirs") if v.name.lower() == name.lower()), None)
    require(
        view is not None,
        f"IIS configures {item.path} on {item.server} but the Get-*VirtualDirectory cmdlets "
        f"(-ShowMailboxVirtualDirectories) list no '{name}'",
        expected=f"tokenChecking {item.token_checking} in both",
        actual="no cmdlet object",
    )
    shown = view.token_checking or "not readable"  # type: ignore[union-attr]
    require(
        shown == item.token_checking,
        f"{name} on {item.server}: the cmdlet shows ExtendedProtectionTokenChecking "
        f"{shown} but applicationHost.config has tokenChecking {item.token_checking}",
        expected=f"the same value ({item.token_checking} in IIS)",
        actual=f"cmdlet {shown}",
    )


@check(
    "DAG-EP-005",
    "IIS SSL settings (sslFlags) are what Extended Protection needs on every directory of both sites",
    severity="critical",
    rationale="Channel binding only works over TLS: CSS-Exchange's Extended Protection table expects sslFlags "
    "Ssl,Ssl128 on every directory, SslNegotiateCert on the front-end PowerShell (which must not require SSL: "
    "remote PowerShell uses HTTP) and Ssl,Ssl128,SslNegotiateCert on the back-end PowerShell "
    "(Shared/Get-ExtendedProtectionConfiguration.ps1; HealthChecker reports SslFlagsSetCorrectly).",
    remediation="Set the SSL settings of {key} in IIS Manager (Require SSL, client certificates) or rerun "
    "ExchangeExtendedProtectionManagement.ps1 on {server}",
    phases=("health", "preflight", "postflight"),
    source="iis",
)
def test_iis_ssl_flags_match(item: IisLocation, snapshot) -> None:
    verdict = judge_ssl_flags(item, snapshot.get("exsetup")[0].version)
    require(verdict.ok, verdict.message, expected=verdict.expected, actual=verdict.actual)


@check(
    "DAG-EP-006",
    "Outlook Anywhere does not offload SSL where Extended Protection is on",
    severity="critical",
    rationale="Extended Protection binds authentication to the TLS channel the client opened with Exchange; "
    "with SSLOffloading $true TLS ends before the server and Outlook Anywhere clients fail to authenticate "
    "(Learn, 'Configure Windows Extended Protection in Exchange Server': SSL offloading is not supported; "
    "CSS-Exchange ExchangeExtendedProtectionManagement.ps1 refuses to configure EP while it is on, issue #2033).",
    remediation="Set-OutlookAnywhere -Identity '{server}\\Rpc (Default Web Site)' -SSLOffloading $false "
    "(and end TLS on Exchange, or bridge it with the same certificate)",
    phases=("health", "preflight", "postflight"),
    source="outlook_anywhere",
)
def test_outlook_anywhere_not_offloading_ssl_with_extended_protection(item: OutlookAnywhere, snapshot) -> None:
    ep_on = [loc.path for loc in snapshot.get("iis") if loc.token_checking in ("Allow", "Require")]
    require(
        not (item.ssl_offloading and ep_on),
        f"{item.name} on {item.server} has SSLOffloading $true while Extended Protection is on "
        f"({len(ep_on)} directories, e.g. {', '.join(ep_on[:3])})",
        expected="SSLOffloading $false",
        actual="SSLOffloading $true",
    )
