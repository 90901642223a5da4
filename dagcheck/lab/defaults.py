"""What a new simulated server looks like: as setup leaves it and as the lab's administrator configured it.

The registry (no reboot pending; Windows, .NET and TLS per build), IIS with Extended Protection and SSL
flags, the virtual directories' URLs and authentication, the default receive connectors and the
certificates, each from Microsoft's documentation (cited at each), never from dagcheck's own tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from dagcheck.lab import certificates, products
from dagcheck.lab.objects import IisApplication, LabCertificate, LabReceiveConnector, LabServer
from dagcheck.lab.products import Build

NDP_FULL = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full"
SESSION_MANAGER = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"
WINDOWS_NT = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
# Keys whose existence means a reboot is pending (Windows servicing, Windows Update, Exchange setup).
REBOOT_KEYS = {
    "cbs": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootPending",
    "windows_update": (
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\RebootRequired"
    ),
    "exchange_setup": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\UpdateExeVolatile",
}


def default_registry(build: Build | None = None) -> dict[str, dict[str, tuple[str, object]]]:
    """No reboot pending; Windows and .NET Framework as the lab's administrator installed them for the build
    (Learn, Exchange Server supportability matrix): Exchange 2016 on Windows Server 2016 with .NET 4.8
    (release 528049, "all other Windows operating systems" in Learn's "Determine which .NET Framework versions
    are installed"), Exchange 2019 before CU12 on Windows Server 2019 with 4.8 (528049), later 2019 and SE on
    Windows Server 2022 with 4.8.1 (533325)."""
    release, version, windows, product = 533325, "4.8.09032", "20348", "Windows Server 2022 Datacenter"
    if build is not None and build[:2] == (15, 1):
        release, version, windows, product = 528049, "4.8.03761", "14393", "Windows Server 2016 Datacenter"
    elif build is not None and build[:2] == (15, 2) and build[2] < 1118:
        release, version, windows, product = 528049, "4.8.03761", "17763", "Windows Server 2019 Datacenter"
    return {
        NDP_FULL: {"Release": ("REG_DWORD", release), "Version": ("REG_SZ", version), "Install": ("REG_DWORD", 1)},
        WINDOWS_NT: {"CurrentBuildNumber": ("REG_SZ", windows), "ProductName": ("REG_SZ", product)},
        SESSION_MANAGER: {"BootExecute": ("REG_MULTI_SZ", ["autocheck autochk *"])},
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing": {},
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update": {},
        **tls_registry(),
    }


SCHANNEL_PROTOCOLS = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols"
DOTNET_TLS_KEYS = tuple(
    f"HKEY_LOCAL_MACHINE\\SOFTWARE\\{wow}Microsoft\\.NETFramework\\{v}"
    for v in ("v4.0.30319", "v2.0.50727")
    for wow in ("", "Wow6432Node\\")
)


def tls_registry() -> dict[str, dict[str, tuple[str, object]]]:
    """TLS as Microsoft's guidance leaves it (Learn, "Exchange Server TLS configuration best practices"): TLS 1.0
    and 1.1 off, TLS 1.2 on, for Server and Client; .NET 4 and 2 use the system's TLS versions and strong crypto."""
    keys: dict[str, dict[str, tuple[str, object]]] = {SCHANNEL_PROTOCOLS: {}}
    for version, on in (("TLS 1.0", False), ("TLS 1.1", False), ("TLS 1.2", True)):
        keys[f"{SCHANNEL_PROTOCOLS}\\{version}"] = {}
        for side in ("Server", "Client"):
            keys[f"{SCHANNEL_PROTOCOLS}\\{version}\\{side}"] = {
                "Enabled": ("REG_DWORD", 1 if on else 0),
                "DisabledByDefault": ("REG_DWORD", 0 if on else 1),
            }
    for key in DOTNET_TLS_KEYS:
        keys[key] = {"SystemDefaultTlsVersions": ("REG_DWORD", 1), "SchUseStrongCrypto": ("REG_DWORD", 1)}
    return keys


def setup_iis(build: Build) -> dict[tuple[str, str], IisApplication]:
    """The IIS applications of both web sites with the Extended Protection and SSL settings setup leaves:
    EP as Microsoft documents it on builds whose setup enables it or that the administrator configured
    (products.extended_protection_on), otherwise None everywhere."""
    enabled = products.extended_protection_on(build)
    return {
        (site, app): IisApplication(
            token_checking=token if enabled else "None",
            ssl_flags=products.SETUP_SSL_FLAGS.get((site, app), products.DEFAULT_SSL_FLAGS),
        )
        for site, apps in products.SETUP_EP.items()
        for app, token in apps.items()
    }


# The vdirs the Get-*VirtualDirectory cmdlets describe, and the lab administrator's external namespace
# (mail.<domain>) on the ones clients reach from outside.
CMDLET_VDIRS = frozenset(products.VDIR_CMDLETS.values())
EXTERNAL_VDIRS = ("owa", "ecp", "EWS", "OAB", "Microsoft-Server-ActiveSync", "mapi")
# Authentication methods of the front end (cmdlet view): owa's are CSS-Exchange's GetOwaVirtualDirectory.xml
# (Internal Basic, Fba; External Fba); ecp is assumed to match owa. Microsoft-Server-ActiveSync: Basic, and
# Autodiscover: Basic and Windows (Learn, "Default settings for Exchange virtual directories"; IIS's Windows
# authentication shows as Ntlm, WindowsIntegrated); Autodiscover and EWS also accept WSSecurity (their
# -WSSecurityAuthentication, $true by default: an Exchange 2010 Get-AutodiscoverVirtualDirectory output shows
# {Basic, Ntlm, WindowsIntegrated, WSSecurity}) and OAuth (guessed default). PowerShell's front end
# authenticates with Kerberos only (setup enables neither Basic nor Windows there; ExchangeDsc's example turns
# Windows on by hand): shown as Kerberos, guessed. The rest (mapi, OAB) keep Ntlm, WindowsIntegrated, OAuth.
_EWS_LIKE = ["Ntlm", "WindowsIntegrated", "WSSecurity", "OAuth"]
VDIR_AUTH = {
    "owa": (["Basic", "Fba"], ["Fba"]),
    "ecp": (["Basic", "Fba"], ["Fba"]),
    "Microsoft-Server-ActiveSync": (["Basic"], ["Basic"]),
    "Autodiscover": (["Basic", *_EWS_LIKE], ["Basic", *_EWS_LIKE]),
    "EWS": (_EWS_LIKE, _EWS_LIKE),
    "PowerShell": (["Kerberos"], ["Kerberos"]),
}
OTHER_AUTH = (["Ntlm", "WindowsIntegrated", "OAuth"], ["Ntlm", "WindowsIntegrated", "OAuth"])


def configure_vdirs(server: LabServer) -> None:
    """URLs and authentication as the lab's administrator set them after setup: the server's FQDN inside,
    the organisation's namespace outside (front end only; the back end has no URLs)."""
    domain = server.fqdn.split(".", 1)[1] if "." in server.fqdn else server.fqdn
    for (site, app), a in server.iis.items():
        if app not in CMDLET_VDIRS or site != products.FRONT_END:
            continue
        a.internal_url = f"https://{server.fqdn}/{app}"
        a.external_url = f"https://mail.{domain}/{app}" if app in EXTERNAL_VDIRS else None
        internal, external = VDIR_AUTH.get(app, OTHER_AUTH)
        a.internal_auth, a.external_auth = list(internal), list(external)


def default_receive_connectors(name: str) -> list[LabReceiveConnector]:
    """The five receive connectors setup creates on an Exchange 2016/2019/SE Mailbox server. Names, roles
    and ports are Microsoft Learn's "Default Receive connectors created during setup"; the AuthMechanism
    and PermissionGroups values are from memory of that page and of Get-ReceiveConnector output, not
    from a capture here (guessed in their details)."""
    n = name.upper()
    both = "Tls, Integrated, BasicAuth, BasicAuthRequireTLS, ExchangeServer"
    return [
        # Learn's table offers Basic authentication on "Default <Server>" without "only after starting TLS":
        # no BasicAuthRequireTLS there.
        LabReceiveConnector(
            f"Default {n}",
            "HubTransport",
            ["0.0.0.0:2525", "[::]:2525"],
            "Tls, Integrated, BasicAuth, ExchangeServer",
            "ExchangeUsers, ExchangeServers, ExchangeLegacyServers",
        ),
        LabReceiveConnector(
            f"Client Proxy {n}", "HubTransport", ["0.0.0.0:465", "[::]:465"], both, "ExchangeUsers, ExchangeServers"
        ),
        LabReceiveConnector(
            f"Default Frontend {n}",
            "FrontendTransport",
            ["0.0.0.0:25", "[::]:25"],
            both,
            "AnonymousUsers, ExchangeServers, ExchangeLegacyServers",
        ),
        LabReceiveConnector(
            f"Outbound Proxy Frontend {n}", "FrontendTransport", ["0.0.0.0:717", "[::]:717"], both, "ExchangeServers"
        ),
        LabReceiveConnector(
            f"Client Frontend {n}",
            "FrontendTransport",
            ["0.0.0.0:587", "[::]:587"],
            "Tls, Integrated, BasicAuth, BasicAuthRequireTLS",
            "ExchangeUsers",
        ),
    ]


def default_certificates(server: LabServer, issued: dt.datetime, auth: LabCertificate) -> list[LabCertificate]:
    """The lab administrator's SAN certificate bound to IIS and SMTP, setup's self-signed one (five years,
    SMTP once the SAN certificate took IIS), and the organisation's Auth certificate: real X.509
    certificates (dagcheck.lab.certificates) whose thumbprints are their SHA-1, as Windows shows them."""
    domain = server.fqdn.split(".", 1)[1] if "." in server.fqdn else server.fqdn
    san = lab_certificate(
        f"mail.{domain}",
        [f"mail.{domain}", f"autodiscover.{domain}"],
        "IMAP, POP, IIS, SMTP",
        issued,
        issued + dt.timedelta(days=700),
    )
    own = lab_certificate(
        server.name.upper(), [server.name.upper(), server.fqdn], "SMTP", issued, issued + dt.timedelta(days=5 * 365)
    )
    return [san, own, dataclasses.replace(auth, domains=list(auth.domains))]


def lab_certificate(
    common_name: str, sans: list[str], services: str, not_before: dt.datetime, not_after: dt.datetime
) -> LabCertificate:
    thumbprint, raw = certificates.make(common_name, sans, not_before, not_after)
    return LabCertificate(
        thumbprint, f"CN={common_name}", services, not_after, raw, not_before, list(dict.fromkeys([common_name, *sans]))
    )


def auth_certificate(issued: dt.datetime, not_after: dt.datetime | None = None) -> LabCertificate:
    """The Microsoft Exchange Server Auth Certificate: no SANs, five years, the same on every server."""
    return lab_certificate(
        certificates.AUTH_SUBJECT.removeprefix("CN="), [], "SMTP", issued, not_after or issued + dt.timedelta(days=5 * 365)
    )
