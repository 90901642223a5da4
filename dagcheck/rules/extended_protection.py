"""Microsoft's expected Extended Protection token checking per web site and virtual directory.

The matrix is the one of Microsoft's "Configure Windows Extended Protection in Exchange Server" and
CSS-Exchange's Get-ExtendedProtectionConfiguration (EXCHANGE-NOTES.md), for every IIS location of
both web sites, spelled as applicationHost.config spells the paths. The cmdlet names
('owa (Exchange Back End)') look it up case-insensitively too.

One mitigation is supported in place of Extended Protection: an IIS IP allow-list (ipSecurity
allowUnlisted="false" with the addresses that may connect) on Exchange Back End/EWS, which
ExchangeExtendedProtectionManagement.ps1 -RestrictType EWSBackend applies and HealthChecker accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagcheck.sources.iis_config import BACK_END, FRONT_END, IisLocation

# (web site, IIS application path) -> expected tokenChecking, in the order HealthChecker lists them.
# Microsoft-Server-ActiveSync/Proxy: Allow on the front end, Require on the back end, as CSS-Exchange's
# ExtendedProtection configuration table (Shared/Get-ExtendedProtectionConfiguration.ps1) lists it since 2024
# (the stored copies of that file predate it: taken from EXCHANGE-NOTES.md; the front end's Allow is also
# what the E19_Configured_ApplicationHost.config capture carries).
IIS_MATRIX: dict[tuple[str, str], str] = {
    (FRONT_END, "API"): "Require",
    (BACK_END, "API"): "Require",
    (FRONT_END, "Autodiscover"): "None",
    (BACK_END, "Autodiscover"): "None",
    (FRONT_END, "ecp"): "Require",
    (BACK_END, "ecp"): "Require",
    (FRONT_END, "EWS"): "Allow",
    (BACK_END, "EWS"): "Require",
    (FRONT_END, "Microsoft-Server-ActiveSync"): "Allow",
    (BACK_END, "Microsoft-Server-ActiveSync"): "Require",
    (FRONT_END, "Microsoft-Server-ActiveSync/Proxy"): "Allow",
    (BACK_END, "Microsoft-Server-ActiveSync/Proxy"): "Require",
    # Allow on the front end since Outlook for Mac could not download the OAB (CSS-Exchange #1812).
    (FRONT_END, "OAB"): "Allow",
    (BACK_END, "OAB"): "Require",
    # None on the front end (Require breaks remote PowerShell), as the E16/E19 configured files write it
    # and as CSS-Exchange's current Get-ExtendedProtectionConfigurationResult lists it (with Allow on the
    # front-end ActiveSync and OAB). Only an earlier HealthChecker version listed Require here.
    (FRONT_END, "PowerShell"): "None",
    (BACK_END, "PowerShell"): "Require",
    (FRONT_END, "owa"): "Require",
    (BACK_END, "owa"): "Require",
    (FRONT_END, "Rpc"): "Require",
    (BACK_END, "Rpc"): "Require",
    (FRONT_END, "mapi"): "Require",
    (BACK_END, "PushNotifications"): "Require",
    (BACK_END, "RpcWithCert"): "Require",
    (BACK_END, "mapi/emsmdb"): "Require",
    (BACK_END, "mapi/nspi"): "Require",
}
_BY_LOWER = {(site, vdir.lower()): value for (site, vdir), value in IIS_MATRIX.items()}
# Where an IP allow-list is a supported stand-in for Extended Protection (HealthChecker's
# SiteVDirLocations ValidateSet).
MITIGATION_SUPPORTED = frozenset({(BACK_END, "ews")})
LEVELS = {"None": 0, "Allow": 1, "Require": 2}

# The IIS sslFlags each location needs with Extended Protection (CSS-Exchange's NewVirtualDirMatchingEntry
# -SslFlags: "Ssl,Ssl128" on both sites by default; PowerShell "SslNegotiateCert" on the front end and
# "Ssl,Ssl128,SslNegotiateCert" on the back end). Every expected flag must be set; sslFlags "None" sets none.
DEFAULT_SSL_FLAGS = ("Ssl", "Ssl128")
SSL_FLAGS: dict[tuple[str, str], tuple[str, ...]] = {
    (FRONT_END, "powershell"): ("SslNegotiateCert",),
    (BACK_END, "powershell"): ("Ssl", "Ssl128", "SslNegotiateCert"),
}
# Remote PowerShell reaches the front end over http://<server>/PowerShell: "Ssl" there refuses it
# (Learn, "Default settings for Exchange virtual directories": PowerShell, Require SSL: No).
SSL_REFUSED: dict[tuple[str, str], tuple[str, ...]] = {(FRONT_END, "powershell"): ("Ssl",)}


def supports_extended_protection(build: tuple[int, int, int, int]) -> bool:
    """Builds with the August 2022 SU or later (2019 CU11+/CU12+, 2016 CU22+/CU23+); SE always."""
    major, minor, b, rev = build
    if (major, minor) == (15, 2):
        return (b, rev) >= (1118, 11) or (b == 986 and rev >= 28) or b > 1118
    if (major, minor) == (15, 1):
        return (b, rev) >= (2507, 11) or (b == 2375 and rev >= 30) or b > 2507
    return False


def expected_token_checking(vdir: str, site: str) -> str | None:
    """The matrix value for a virtual directory on a web site, or None when the matrix has no entry."""
    return _BY_LOWER.get((site, vdir.lower()))


def split_vdir_name(name: str) -> tuple[str, str]:
    """'owa (Default Web Site)' -> ('owa', 'Default Web Site')."""
    vdir, _, site = name.rpartition(" (")
    return vdir, site.rstrip(")")


def cmdlet_name(site: str, vdir: str) -> str:
    """The Name a Get-*VirtualDirectory object has for an IIS location: 'ecp (Exchange Back End)'."""
    return f"{vdir} ({site})"


def override_for(overrides: dict[str, str], site: str, vdir: str) -> str | None:
    """The inventory's deliberate value for a directory, named either way ('EWS (Exchange Back End)' or
    'Exchange Back End/EWS'), case-insensitively."""
    wanted = {cmdlet_name(site, vdir).lower(), f"{site}/{vdir}".lower()}
    return next((v for k, v in overrides.items() if k.lower() in wanted), None)


@dataclass(frozen=True)
class EpVerdict:
    ok: bool
    expected: str
    actual: str
    message: str


def judge_location(loc: IisLocation, build: tuple[int, int, int, int], overrides: dict[str, str]) -> EpVerdict:
    """One IIS location against the matrix for the server's build, the inventory's overrides and the
    supported IP-filter mitigation. Higher than expected fails too: clients cannot authenticate."""
    override = override_for(overrides, loc.site, loc.vdir)
    matrix = expected_token_checking(loc.vdir, loc.site) or "None"
    expected = override or (matrix if supports_extended_protection(build) else "None")
    where = f"{loc.path} on {loc.server}"
    origin = "" if loc.present else " (no <location> of its own: inherited or IIS's default)"
    actual = loc.token_checking
    allow = loc.ip_allow_list
    if actual == expected:
        return EpVerdict(True, expected, actual, f"{where} has tokenChecking {actual}{origin}")
    mitigable = (loc.site, loc.vdir.lower()) in MITIGATION_SUPPORTED
    if expected == "Require" and mitigable and allow:
        listed = ", ".join(str(r) for r in allow[:5]) + (" ..." if len(allow) > 5 else "")
        return EpVerdict(
            True,
            f"{expected} or an IP allow-list",
            f"tokenChecking {actual} with an IP allow-list ({listed})",
            f"{where} is mitigated by an IP allow-list instead of Extended Protection",
        )
    if actual.startswith("invalid"):
        why = " — IIS refuses this value and the directory fails to load"
    elif LEVELS[actual] > LEVELS[expected]:
        why = " — higher than expected, clients will fail to authenticate"
    else:
        why = " — lower than expected, NTLM relay stays open"
        if mitigable and not loc.allow_unlisted:
            why += " (ipSecurity allowUnlisted is false but no address is allowed)"
        elif mitigable:
            why += " and no IP allow-list mitigates it"
    shown = f"expected: {expected} or an IP allow-list" if expected == "Require" and mitigable else None
    return EpVerdict(
        False, shown.removeprefix("expected: ") if shown else expected, actual, f"{where} has tokenChecking {actual}{origin}{why}"
    )


def expected_ssl_flags(site: str, vdir: str) -> tuple[str, ...]:
    return SSL_FLAGS.get((site, vdir.lower()), DEFAULT_SSL_FLAGS)


def judge_ssl_flags(loc: IisLocation, build: tuple[int, int, int, int]) -> EpVerdict:
    """The location's sslFlags against CSS-Exchange's table, on builds that support Extended Protection
    (which is what the table is for); other builds are not judged."""
    expected = expected_ssl_flags(loc.site, loc.vdir)
    shown = ",".join(expected)
    where = f"{loc.path} on {loc.server}"
    if not supports_extended_protection(build):
        return EpVerdict(True, shown, str(loc.ssl_flags), f"{where}: build without Extended Protection, not judged")
    have = {f.strip().lower() for f in (loc.ssl_flags or "").split(",") if f.strip()} - {"none"}
    missing = [f for f in expected if f.lower() not in have]
    refused = [f for f in SSL_REFUSED.get((loc.site, loc.vdir.lower()), ()) if f.lower() in have]
    actual = loc.ssl_flags if loc.ssl_flags is not None else "not set (IIS default None)"
    if not missing and not refused:
        return EpVerdict(True, shown, actual, f"{where} has sslFlags {actual}")
    why = (
        (f"lacks {', '.join(missing)}" if missing else "")
        + ("; " if missing and refused else "")
        + (f"sets {', '.join(refused)}, which refuses remote PowerShell over HTTP" if refused else "")
    )
    return EpVerdict(False, shown, actual, f"{where} has sslFlags {actual}: {why}")


# The directories the Get-*VirtualDirectory cmdlets also describe (lower case): the cross-check's scope.
CMDLET_VDIRS = frozenset({"owa", "ecp", "ews", "autodiscover", "mapi", "oab", "microsoft-server-activesync", "powershell"})


def has_cmdlet_view(loc: IisLocation) -> bool:
    return loc.vdir.lower() in CMDLET_VDIRS
