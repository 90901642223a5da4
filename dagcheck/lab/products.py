"""What the lab knows about Exchange products, written from Microsoft's documentation and real captures.

This is the lab's own knowledge, kept apart from the checker's (the rules and tables of the checks) on
purpose: an oracle that borrows the answers of the code under test cannot catch its mistakes. When
the two disagree, one of them is wrong, and a test shows it.

Sources: Microsoft Learn "Exchange Server build numbers and release dates"; Microsoft's Extended
Protection documentation and CSS-Exchange's ExchangeExtendedProtectionManagement (the per-vdir
matrix); the real Exchange 2019 captures in ../shared/fixtures (components, services); notes in
../shared/EXCHANGE-NOTES.md. Where a fact is a guess, the comment beside it says so.
"""

from __future__ import annotations

from dataclasses import dataclass

Build = tuple[int, int, int, int]


@dataclass(frozen=True)
class Release:
    """One CU (or RTM) of a product: AdminDisplayVersion shows the CU's own build, ExSetup.exe the SU's."""

    product: str
    name: str
    cu_build: Build
    su_builds: tuple[Build, ...]  # Security Updates of this CU that the lab can be set to, oldest first


RELEASES = (
    # Exchange Server Subscription Edition: RTM 2025-07-01; SUs Feb26 .37, Jun26 .43, Aug26 .46, Sep26 .49.
    Release(
        "Exchange Server SE",
        "RTM",
        (15, 2, 2562, 17),
        ((15, 2, 2562, 37), (15, 2, 2562, 43), (15, 2, 2562, 46), (15, 2, 2562, 49)),
    ),
    Release("Exchange Server 2019", "CU15", (15, 2, 1748, 10), ((15, 2, 1748, 49),)),
    Release("Exchange Server 2019", "CU14", (15, 2, 1544, 4), ((15, 2, 1544, 44),)),
    Release("Exchange Server 2019", "CU13", (15, 2, 1258, 12), ()),
    Release("Exchange Server 2019", "CU12", (15, 2, 1118, 7), ()),
    Release("Exchange Server 2016", "CU23", (15, 1, 2507, 6), ((15, 1, 2507, 72),)),
    Release("Exchange Server 2016", "CU22", (15, 1, 2375, 7), ()),
)

DEFAULT_BUILD: Build = (15, 2, 2562, 49)  # Exchange SE RTM with the Sep26SU: the embedded lab's default


def parse_build(text: str) -> Build:
    a, b, c, d = (int(p) for p in str(text).strip().split("."))
    return a, b, c, d


def release_of(build: Build) -> Release | None:
    """The CU a build belongs to (same major.minor.build), or None for a build the lab does not know."""
    return next((r for r in RELEASES if r.cu_build[:3] == build[:3]), None)


def product_of(build: Build) -> str:
    """The product name from the build: 15.1 is 2016; 15.2 from build 2562 on is SE, below it 2019."""
    release = release_of(build)
    if release is not None:
        return release.product
    if build[:2] == (15, 1):
        return "Exchange Server 2016"
    if build[:2] == (15, 2):
        return "Exchange Server SE" if build[2] >= 2562 else "Exchange Server 2019"
    raise ValueError(f"the lab simulates Exchange 2016 (15.1), 2019 and SE (15.2), not {'.'.join(map(str, build))}")


def admin_display_version(build: Build) -> Build:
    """AdminDisplayVersion (from AD) shows the CU's own build, not the SU revision ExSetup.exe carries."""
    release = release_of(build)
    return release.cu_build if release else build


# ---- components ---------------------------------------------------------------------------------

# As listed by a real Exchange 2019 server (fixture GetServerComponentState.xml), in order. Exchange SE
# keeps 2019's list (SE RTM is 2019 CU15's code base).
COMPONENTS_2019 = (
    "ServerWideOffline",
    "HubTransport",
    "FrontendTransport",
    "Monitoring",
    "RecoveryActionsEnabled",
    "AutoDiscoverProxy",
    "ActiveSyncProxy",
    "EcpProxy",
    "EwsProxy",
    "ImapProxy",
    "OabProxy",
    "OwaProxy",
    "PopProxy",
    "PushNotificationsProxy",
    "RpsProxy",
    "RwsProxy",
    "RpcProxy",
    "XropProxy",
    "HttpProxyAvailabilityGroup",
    "ForwardSyncDaemon",
    "ProvisioningRps",
    "MapiProxy",
    "EdgeTransport",
    "HighAvailability",
    "SharedCache",
    "MailboxDeliveryProxy",
    "RoutingUpdates",
    "RestProxy",
    "DefaultProxy",
    "Lsass",
    "RoutingService",
    "E4EProxy",
    "CafeLAMv2",
    "LogExportProvider",
)
# Exchange 2016 still has Unified Messaging, so its list carries UMCallRouter (removed in 2019). Its
# position in the list is guessed (after RpcProxy, as administrators' published outputs show it).
COMPONENTS_2016 = (*COMPONENTS_2019[:17], "UMCallRouter", *COMPONENTS_2019[17:])


def components(product: str) -> tuple[str, ...]:
    return COMPONENTS_2016 if product.endswith("2016") else COMPONENTS_2019


# Inactive by default on premises (product default-state table; both E16/E19 fixtures).
DEFAULT_INACTIVE = frozenset({"ForwardSyncDaemon", "ProvisioningRps"})
# Not switched off by ServerWideOffline.
SWO_EXEMPT = frozenset({"ServerWideOffline", "Monitoring", "RecoveryActionsEnabled"})
# Components that carry a Functional requester entry on a fresh server (as in the E19 fixture).
FUNCTIONAL_SEEDED = ("ServerWideOffline", "Monitoring", "RecoveryActionsEnabled")
REQUESTERS = ("HealthApi", "Maintenance", "Sidelined", "Functional", "Deployment")


# ---- Test-ServiceHealth -------------------------------------------------------------------------

# Roles and their required services as a real Exchange 2019 server reports them (TestServiceHealth.xml).
_ROLES_2019 = {
    "Mailbox Server Role": (
        "IISAdmin",
        "MSExchangeADTopology",
        "MSExchangeDelivery",
        "MSExchangeIS",
        "MSExchangeMailboxAssistants",
        "MSExchangeRepl",
        "MSExchangeRPC",
        "MSExchangeServiceHost",
        "MSExchangeSubmission",
        "MSExchangeThrottling",
        "MSExchangeTransportLogSearch",
        "W3Svc",
        "WinRM",
    ),
    "Client Access Server Role": (
        "IISAdmin",
        "MSExchangeADTopology",
        "MSExchangeMailboxReplication",
        "MSExchangeRPC",
        "MSExchangeServiceHost",
        "W3Svc",
        "WinRM",
    ),
    "Hub Transport Server Role": (
        "IISAdmin",
        "MSExchangeADTopology",
        "MSExchangeEdgeSync",
        "MSExchangeServiceHost",
        "MSExchangeTransport",
        "MSExchangeTransportLogSearch",
        "W3Svc",
        "WinRM",
    ),
}
# Exchange 2016 still has Unified Messaging, and Test-ServiceHealth reports it as a fourth role, "Unified
# Messaging Server Role" (EXCHANGE-NOTES 4.7). Guessed, no 2016 capture here: the role's place (after Client
# Access), its service list (the common services plus MSExchangeUM, the pattern of the other roles), and the
# call router MSExchangeUMCR under the Client Access role, where the front-end services are listed.
_ROLES_2016 = {
    "Mailbox Server Role": _ROLES_2019["Mailbox Server Role"],
    "Client Access Server Role": (*_ROLES_2019["Client Access Server Role"], "MSExchangeUMCR"),
    "Unified Messaging Server Role": (
        "IISAdmin",
        "MSExchangeADTopology",
        "MSExchangeServiceHost",
        "MSExchangeUM",
        "W3Svc",
        "WinRM",
    ),
    "Hub Transport Server Role": _ROLES_2019["Hub Transport Server Role"],
}


def role_services(product: str) -> dict[str, tuple[str, ...]]:
    return _ROLES_2016 if product.endswith("2016") else _ROLES_2019


SERVICE_DISPLAY_NAMES = {
    "MSExchangeTransport": "Microsoft Exchange Transport",
    "MSExchangeIS": "Microsoft Exchange Information Store",
    "MSExchangeRepl": "Microsoft Exchange Replication",
    "MSExchangeADTopology": "Microsoft Exchange Active Directory Topology",
    "MSExchangeUM": "Microsoft Exchange Unified Messaging",
    "MSExchangeUMCR": "Microsoft Exchange Unified Messaging Call Router",
    "ClusSvc": "Cluster Service",
    "W3Svc": "World Wide Web Publishing Service",
    "WinRM": "Windows Remote Management (WS-Management)",
}


# ---- web sites, virtual directories, Extended Protection ------------------------------------------

FRONT_END, BACK_END = "Default Web Site", "Exchange Back End"
WEB_SITES = (FRONT_END, BACK_END)

# The Get-*VirtualDirectory cmdlets and the virtual directory each returns (its Name before " (site)").
VDIR_CMDLETS = {
    "Get-OwaVirtualDirectory": "owa",
    "Get-EcpVirtualDirectory": "ecp",
    "Get-WebServicesVirtualDirectory": "EWS",
    "Get-AutodiscoverVirtualDirectory": "Autodiscover",
    "Get-MapiVirtualDirectory": "mapi",
    "Get-OabVirtualDirectory": "OAB",
    "Get-ActiveSyncVirtualDirectory": "Microsoft-Server-ActiveSync",
    "Get-PowerShellVirtualDirectory": "PowerShell",
}

# IIS applications per web site, as applicationHost.config's <location path="SITE/APP"> names them on a
# 2019/SE server (fixture E19_Configured_ApplicationHost.config), with the tokenChecking that Exchange
# setup (2019 CU14 and later, SE) configures, per Microsoft's Extended Protection documentation.
# An application that setup does not publish on a site is absent from that site's list. The front end's
# Microsoft-Server-ActiveSync/Proxy carries Allow in the capture; the back end's Require is what CSS-Exchange's
# ExchangeExtendedProtectionManagement.ps1 has set there since 2024.
SETUP_EP: dict[str, dict[str, str]] = {
    FRONT_END: {
        "API": "Require",
        "Autodiscover": "None",
        "ecp": "Require",
        "EWS": "Allow",
        "Microsoft-Server-ActiveSync": "Allow",
        "Microsoft-Server-ActiveSync/Proxy": "Allow",
        "OAB": "Allow",
        "owa": "Require",
        "PowerShell": "None",
        "Rpc": "Require",
        "mapi": "Require",
    },
    BACK_END: {
        "API": "Require",
        "Autodiscover": "None",
        "ecp": "Require",
        "EWS": "Require",
        "Microsoft-Server-ActiveSync": "Require",
        "Microsoft-Server-ActiveSync/Proxy": "Require",
        "OAB": "Require",
        "owa": "Require",
        "PowerShell": "Require",
        "Rpc": "Require",
        "RpcWithCert": "Require",
        "PushNotifications": "Require",
        "mapi/emsmdb": "Require",
        "mapi/nspi": "Require",
    },
}
# IIS SSL settings per application (access sslFlags) as setup leaves them.
SETUP_SSL_FLAGS = {
    (FRONT_END, "PowerShell"): "SslNegotiateCert",
    (BACK_END, "PowerShell"): "Ssl, SslNegotiateCert, Ssl128",
}
DEFAULT_SSL_FLAGS = "Ssl, Ssl128"


def setup_enables_extended_protection(build: Build) -> bool:
    """Exchange 2019 CU14 and later (and so SE) turn Extended Protection on at setup; older builds leave it
    off unless an administrator ran ExchangeExtendedProtectionManagement.ps1."""
    return build[:2] == (15, 2) and build[2] >= 1544


# The first build of each CU that can run Extended Protection: the August 2022 SU (Microsoft's EP
# announcement, 2022-08-09; CSS-Exchange ExchangeExtendedProtectionManagement's prerequisites).
_EP_CAPABLE_FROM: dict[tuple[int, int, int], int] = {
    (15, 2, 986): 28,
    (15, 2, 1118): 11,  # 2019 CU11 Aug22SU, CU12 Aug22SU
    (15, 1, 2375): 30,
    (15, 1, 2507): 11,  # 2016 CU22 Aug22SU, CU23 Aug22SU
}


def extended_protection_on(build: Build) -> bool:
    """Whether a well-kept lab server of this build has Extended Protection on. Setup turns it on from 2019
    CU14 (and SE). On an older build that can run it, the lab models the administrator having run
    ExchangeExtendedProtectionManagement.ps1, as Microsoft has asked since August 2022: a 2016 CU23 or 2019
    CU13 server that is healthy in every other way has EP on (an assumption of the lab, not a product default)."""
    if setup_enables_extended_protection(build):
        return True
    first = _EP_CAPABLE_FROM.get(build[:3])
    if first is not None:
        return build[3] >= first
    later_cu = {(15, 2): 1118, (15, 1): 2507}.get(build[:2])
    return later_cu is not None and build[2] > later_cu


# ---- Managed Availability -----------------------------------------------------------------------

# Health sets and the monitors of their probes, as Microsoft's troubleshooting pages for each health set
# name them (OfficeDocs-Exchange, "Troubleshooting OWA.Protocol / EWS.Protocol / ActiveSync.Protocol /
# Autodiscover.Protocol Health Set": OwaSelfTestProbe -> OwaSelfTestMonitor, OwaDeepTestProbe ->
# OwaDeepTestMonitor, ...; RequestsQueuedGt500Monitor in the ActiveSync health set). A real server has
# several hundred monitors; the lab serves these few, each with its HealthGroupName (guessed: the grouping
# of Learn's health set table, ServiceComponents for the protocol sets, CustomerTouchPoints for ActiveSync).
HEALTH_MONITORS: tuple[tuple[str, str, str], ...] = (
    # (health set, monitor, health group)
    ("OWA.Protocol", "OwaSelfTestMonitor", "ServiceComponents"),
    ("OWA.Protocol", "OwaDeepTestMonitor", "ServiceComponents"),
    ("EWS.Protocol", "EWSSelfTestMonitor", "ServiceComponents"),
    ("EWS.Protocol", "EWSDeepTestMonitor", "ServiceComponents"),
    ("ActiveSync.Protocol", "ActiveSyncSelfTestMonitor", "ServiceComponents"),
    ("ActiveSync", "RequestsQueuedGt500Monitor", "CustomerTouchPoints"),
    ("Autodiscover.Protocol", "AutodiscoverSelfTestMonitor", "ServiceComponents"),
)
# The back-end application pool each protocol health set's probes go through: the self-test probes request the
# protocol on the back end (OwaSelfTestProbe: https://localhost:444/owa/exhealth.check), and Microsoft's
# troubleshooting pages name a non-responding application pool first among the causes ("The EWS Application
# pool ... is not responding"; recovery: check MSExchangeServicesAppPool). With that pool or Exchange Back End
# stopped, the health set's monitors turn Unhealthy.
PROTOCOL_APP_POOLS = {
    "OWA.Protocol": "MSExchangeOWAAppPool",
    "EWS.Protocol": "MSExchangeServicesAppPool",
    "ActiveSync.Protocol": "MSExchangeSyncAppPool",
    "Autodiscover.Protocol": "MSExchangeAutodiscoverAppPool",
}
