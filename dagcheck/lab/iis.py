"""The lab server's IIS configuration as the file a real server has: %windir%\\System32\\inetsrv\\config\\
applicationHost.config, generated from the server's IIS state (LabServer.iis), never canned.

Layout, section names and the values setup writes follow the real Exchange 2016/2019 files in
../shared/fixtures/css-exchange/ExtendedProtection: the <sites> of "Default Web Site" (id 1) and
"Exchange Back End" (id 2) with their applications and app pools, the server-wide
<system.webServer><security> (sslFlags None, an empty <ipSecurity />), a <location> per site root
and per application with windowsAuthentication/extendedProtection tokenChecking, access sslFlags and,
where set, ipSecurity. Guessed: the lab leaves out the ~1,200 lines of section registrations, modules
and handlers that dagcheck does not read (a real file has them), writes CRLF line ends, and writes
<extendedProtection> only where tokenChecking is not None, except on Autodiscover and EWS, which
also carry an explicit None on servers without Extended Protection (as the NotConfigured file does).
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from dagcheck.lab import products
from dagcheck.lab.objects import IisApplication, LabServer

EXSETUP = r"C:\Program Files\Microsoft\Exchange Server\V15"
WINDIR = r"C:\Windows"
PATH = WINDIR + r"\System32\inetsrv\config\applicationHost.config"
SITE_IDS = {products.FRONT_END: "1", products.BACK_END: "2"}
SITE_ROOTS = {products.FRONT_END: r"%SystemDrive%\inetpub\wwwroot", products.BACK_END: EXSETUP + r"\ClientAccess"}
# application -> (front-end app pool, back-end app pool, directory under FrontEnd\HttpProxy, under ClientAccess)
APPS: dict[str, tuple[str, str, str, str]] = {
    "owa": ("MSExchangeOWAAppPool", "MSExchangeOWAAppPool", "owa", "owa"),
    "ecp": ("MSExchangeECPAppPool", "MSExchangeECPAppPool", "ecp", "ecp"),
    "EWS": ("MSExchangeServicesAppPool", "MSExchangeServicesAppPool", "EWS", r"exchweb\EWS"),
    "API": ("MSExchangeRestFrontEndAppPool", "MSExchangeRestAppPool", "Rest", "rest"),
    "Autodiscover": ("MSExchangeAutodiscoverAppPool", "MSExchangeAutodiscoverAppPool", "Autodiscover", "Autodiscover"),
    "Microsoft-Server-ActiveSync": ("MSExchangeSyncAppPool", "MSExchangeSyncAppPool", "sync", "sync"),
    "Microsoft-Server-ActiveSync/Proxy": ("MSExchangeSyncAppPool", "MSExchangeSyncAppPool", r"sync\Proxy", r"sync\Proxy"),
    "OAB": ("MSExchangeOABAppPool", "MSExchangeOABAppPool", "OAB", "OAB"),
    "PowerShell": ("MSExchangePowerShellFrontEndAppPool", "MSExchangePowerShellAppPool", "PowerShell", "PowerShell-Proxy"),
    "mapi": ("MSExchangeMapiFrontEndAppPool", "", "mapi", "mapi"),
    "mapi/emsmdb": ("", "MSExchangeMapiMailboxAppPool", "", r"mapi\emsmdb"),
    "mapi/nspi": ("", "MSExchangeMapiAddressBookAppPool", "", r"mapi\nspi"),
    "Rpc": ("MSExchangeRpcProxyFrontEndAppPool", "MSExchangeRpcProxyAppPool", "rpc", ""),
    "RpcWithCert": ("", "MSExchangeRpcProxyAppPool", "", ""),
    "PushNotifications": ("", "MSExchangePushNotificationsAppPool", "", "PushNotifications"),
}
EXPLICIT_NONE = frozenset({"Autodiscover", "EWS"})


def _physical(site: str, app: str) -> str:
    _, _, fe_dir, be_dir = APPS.get(app, ("", "", app.replace("/", "\\"), app.replace("/", "\\")))
    if app.startswith("Rpc"):
        return r"%windir%\System32\RpcProxy"
    if site == products.FRONT_END:
        return EXSETUP + "\\FrontEnd\\HttpProxy\\" + fe_dir
    return EXSETUP + "\\ClientAccess\\" + be_dir


def _pool(site: str, app: str) -> str:
    fe_pool, be_pool, _, _ = APPS.get(app, ("DefaultAppPool", "DefaultAppPool", "", ""))
    return (fe_pool if site == products.FRONT_END else be_pool) or "DefaultAppPool"


def _sites(parent: ET.Element, server: LabServer) -> None:
    sites = ET.SubElement(ET.SubElement(parent, "system.applicationHost"), "sites")
    for site in products.WEB_SITES:
        node = ET.SubElement(sites, "site", {"name": site, "id": SITE_IDS[site]})
        root = ET.SubElement(
            node,
            "application",
            {"path": "/"} if site == products.BACK_END else {"path": "/", "applicationPool": "MSExchangeOWAAppPool"},
        )
        ET.SubElement(root, "virtualDirectory", {"path": "/", "physicalPath": SITE_ROOTS[site]})
        if site == products.BACK_END:
            # On the back end /mapi is a plain directory of the root; emsmdb and nspi are the applications.
            ET.SubElement(root, "virtualDirectory", {"path": "/mapi", "physicalPath": EXSETUP + r"\ClientAccess\mapi"})
        for s, app in server.iis:
            if s == site:
                a = ET.SubElement(node, "application", {"path": f"/{app}", "applicationPool": _pool(site, app)})
                ET.SubElement(a, "virtualDirectory", {"path": "/", "physicalPath": _physical(site, app)})
        bindings = ET.SubElement(node, "bindings")
        ports = ("80", "443") if site == products.FRONT_END else ("81", "444")
        ET.SubElement(bindings, "binding", {"protocol": "http", "bindingInformation": f"*:{ports[0]}:"})
        ET.SubElement(bindings, "binding", {"protocol": "https", "bindingInformation": f"*:{ports[1]}:"})


def _security(parent: ET.Element) -> ET.Element:
    return ET.SubElement(ET.SubElement(parent, "system.webServer"), "security")


def _location(parent: ET.Element, path: str, app: IisApplication) -> None:
    security = _security(ET.SubElement(parent, "location", {"path": path}))
    ET.SubElement(security, "access", {"sslFlags": app.ssl_flags})
    auth = ET.SubElement(security, "authentication")
    win = ET.SubElement(auth, "windowsAuthentication", {"enabled": "true"})
    providers = ET.SubElement(win, "providers")
    ET.SubElement(providers, "clear")
    for value in ("Negotiate", "NTLM"):
        ET.SubElement(providers, "add", {"value": value})
    if app.token_checking != "None" or path.rpartition("/")[2] in EXPLICIT_NONE:
        ET.SubElement(win, "extendedProtection", {"tokenChecking": app.token_checking})
    ET.SubElement(auth, "anonymousAuthentication", {"enabled": "false"})
    ET.SubElement(auth, "basicAuthentication", {"enabled": "false"})
    if app.ip_allow:
        # As ExchangeExtendedProtectionManagement.ps1 -RestrictType EWSBackend leaves it: the listed
        # addresses allowed, everything else refused.
        ipsec = ET.SubElement(security, "ipSecurity", {"allowUnlisted": "false"})
        for entry in app.ip_allow:
            address, _, bits = entry.partition("/")
            attrs = {"ipAddress": address, "allowed": "true"}
            if bits:
                attrs["subnetMask"] = _mask(int(bits))
            ET.SubElement(ipsec, "add", attrs)


def _mask(bits: int) -> str:
    value = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
    return ".".join(str((value >> s) & 0xFF) for s in (24, 16, 8, 0))


def application_host_config(server: LabServer) -> str:
    """The file's text for this server's current IIS state."""
    config = ET.Element("configuration")
    _sites(config, server)
    security = _security(config)
    ET.SubElement(security, "access", {"sslFlags": "None"})
    win = ET.SubElement(
        ET.SubElement(security, "authentication"),
        "windowsAuthentication",
        {"enabled": "false", "authPersistNonNTLM": "true", "useKernelMode": "false"},
    )
    ET.SubElement(win, "providers")
    ET.SubElement(security, "ipSecurity")
    for site in products.WEB_SITES:
        ET.SubElement(
            _security(ET.SubElement(config, "location", {"path": site})), "access", {"sslFlags": products.DEFAULT_SSL_FLAGS}
        )
    for (site, app), settings in server.iis.items():
        _location(config, f"{site}/{app}", settings)
    ET.indent(config, space="    ")
    body = ET.tostring(config, encoding="unicode")
    header = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!--\n    IIS configuration sections.\n\n'
        "    For schema documentation, see\n    %windir%\\system32\\inetsrv\\config\\schema\\IIS_schema.xml.\n\n"
        "    Please make a backup of this file before making any changes to it.\n\n-->\n\n"
    )
    return (header + body + "\n").replace("\n", "\r\n")


def app_pools(server: LabServer) -> list[str]:
    """The server's application pools: those its applications run in (as setup creates them), and IIS's own."""
    pools = {_pool(site, app) for site, app in server.iis} | {"MSExchangeOWAAppPool", "DefaultAppPool"}
    return sorted(pools, key=lambda p: (p == "DefaultAppPool", p.lower()))


def appcmd_list(server: LabServer, what: str) -> str:
    """`appcmd list site` / `appcmd list apppool` as IIS prints them (one line per object, CRLF; Learn,
    "Getting Started with AppCmd.exe"); a stopped site or pool is one a fault stopped (LabServer.stopped_iis)."""

    def state(name: str) -> str:
        return "Stopped" if name in server.stopped_iis else "Started"

    if what == "site":
        lines = []
        for site in products.WEB_SITES:
            ports = ("80", "443") if site == products.FRONT_END else ("81", "444")
            lines.append(
                f'SITE "{site}" (id:{SITE_IDS[site]},bindings:http/*:{ports[0]}:,https/*:{ports[1]}:,state:{state(site)})'
            )
    else:
        lines = [f'APPPOOL "{p}" (MgdVersion:v4.0,MgdMode:Integrated,state:{state(p)})' for p in app_pools(server)]
    return "".join(line + "\r\n" for line in lines)
