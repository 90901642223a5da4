"""Client access: Get-ClientAccessService (Autodiscover SCP) and the Get-*VirtualDirectory cmdlets."""

from __future__ import annotations

from typing import Any

from dagcheck.lab import products
from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import (
    MGMT,
    SYSCONF,
    Call,
    cmdlet,
    lookup_server,
    server_id,
    target_servers,
    version,
)


@cmdlet(
    "Get-ClientAccessService",
    "Identity",
    "IncludeAlternateServiceAccountCredentialStatus",
    "IncludeAlternateServiceAccountCredentialPassword",
)
def get_client_access_service(call: Call) -> list[Any]:
    out = []
    for s in target_servers(call):
        out.append(
            ps.obj(
                [f"{MGMT}.ClientAccessServer", *ps.AD_PRESENTATION],
                {
                    "Name": s.name.upper(),
                    "Fqdn": s.fqdn,
                    "AutoDiscoverServiceInternalUri": s.scp_uri,
                    "AutoDiscoverServiceCN": s.name.upper(),
                    "AutoDiscoverServiceClassName": "ms-Exchange-AutoDiscover-Service",
                    "AutoDiscoverServiceGuid": "77378f46-2c66-4aa9-a6a6-3e7a48b19596",
                    "AutoDiscoverSiteScope": ps.mvp(s.site_scope),
                    "IsOutOfService": False,
                    "Identity": server_id(s),
                },
                to_string=s.name.upper(),
            )
        )
    return out


VDIR_TYPES = {
    "owa": "ADOwaVirtualDirectory",
    "ecp": "ADEcpVirtualDirectory",
    "EWS": "ADWebServicesVirtualDirectory",
    "Autodiscover": "ADAutodiscoverVirtualDirectory",
    "mapi": "ADMapiVirtualDirectory",
    "OAB": "ADOabVirtualDirectory",
    "Microsoft-Server-ActiveSync": "ADMobileVirtualDirectory",
    "PowerShell": "ADPowerShellVirtualDirectory",
}


def _auth(methods: list[str]) -> Any:
    """MultiValuedProperty<AuthenticationMethod>, enum objects in it (CSS-Exchange's owa export)."""
    return ps.typed_list(
        [ps.enum(f"{SYSCONF}.AuthenticationMethod", m) for m in methods],
        [
            f"{ps.EX}.Data.Directory.ADMultiValuedProperty`1[[{ps.AUTH_METHOD}]]",
            f"{ps.EX}.Data.MultiValuedProperty`1[[{ps.AUTH_METHOD}]]",
            f"{ps.EX}.Data.MultiValuedPropertyBase",
            "System.Object",
        ],
    )


def _vdir_cmdlet(cmdlet_name: str, vdir: str) -> None:
    type_name = VDIR_TYPES[vdir]

    def get_vdirs(call: Call) -> list[Any]:
        servers = [lookup_server(call, call.get("Server"))] if call.get("Server") else list(call.org.servers.values())
        ad_only = call.switch("ADPropertiesOnly")
        # Without -ShowMailboxVirtualDirectories the cmdlets list the front end (Default Web Site) only;
        # HealthChecker passes the switch to see the "Exchange Back End" objects too.
        sites = products.WEB_SITES if call.switch("ShowMailboxVirtualDirectories") else (products.FRONT_END,)
        out = []
        for s in servers:
            for site in sites:
                name = f"{vdir} ({site})"
                app = s.iis.get((site, vdir))
                # The EP properties are read from IIS ("task populated"): -ADPropertiesOnly leaves them empty.
                shown = (app.cmdlet_token_checking or app.token_checking) if app else "None"
                token = None if ad_only else ps.enum(f"{SYSCONF}.ExtendedProtectionTokenCheckingMode", shown)
                path = "1" if site == products.FRONT_END else "2"
                out.append(
                    ps.obj(
                        [
                            f"{SYSCONF}.{type_name}",
                            f"{SYSCONF}.ExchangeVirtualDirectory",
                            f"{SYSCONF}.ADVirtualDirectory",
                            f"{SYSCONF}.ADConfigurationObject",
                            f"{ps.EX}.Data.Directory.ADObject",
                            f"{ps.EX}.Data.Directory.ADRawEntry",
                            *ps.CONFIGURABLE,
                        ],
                        {
                            "Name": name,
                            "Server": server_id(s),
                            "MetabasePath": f"IIS://{s.fqdn}/W3SVC/{path}/ROOT/{vdir}",
                            "ExtendedProtectionTokenChecking": token,
                            "ExtendedProtectionFlags": ps.mvp([], element=ps.EP_FLAG),
                            "ExtendedProtectionSPNList": ps.mvp([]),
                            "InternalUrl": app.internal_url if app else None,
                            "ExternalUrl": app.external_url if app else None,
                            "InternalAuthenticationMethods": _auth(app.internal_auth if app else []),
                            "ExternalAuthenticationMethods": _auth(app.external_auth if app else []),
                            "AdminDisplayVersion": version(s.admin_display_version),
                            "Identity": f"{s.name.upper()}\\{name}",
                        },
                        to_string=f"{s.name.upper()}\\{name}",
                    )
                )
        return out

    cmdlet(cmdlet_name, "Identity", "Server", "ADPropertiesOnly", "ShowMailboxVirtualDirectories")(get_vdirs)


for _name, _vdir in products.VDIR_CMDLETS.items():
    _vdir_cmdlet(_name, _vdir)


@cmdlet("Get-OutlookAnywhere", "Identity", "Server", "ADPropertiesOnly")
def get_outlook_anywhere(call: Call) -> list[Any]:
    """The Rpc virtual directory of the front end (Default Web Site), one per server, with the properties
    Learn's Get-OutlookAnywhere/Set-OutlookAnywhere name. Type name guessed (ADRpcHttpVirtualDirectory)."""
    servers = [lookup_server(call, call.get("Server"))] if call.get("Server") else list(call.org.servers.values())
    out = []
    for s in servers:
        name = f"Rpc ({products.FRONT_END})"
        app = s.iis.get((products.FRONT_END, "Rpc"))
        out.append(
            ps.obj(
                [
                    f"{SYSCONF}.ADRpcHttpVirtualDirectory",
                    f"{SYSCONF}.ExchangeVirtualDirectory",
                    f"{SYSCONF}.ADVirtualDirectory",
                    f"{SYSCONF}.ADConfigurationObject",
                    f"{ps.EX}.Data.Directory.ADObject",
                    f"{ps.EX}.Data.Directory.ADRawEntry",
                    *ps.CONFIGURABLE,
                ],
                {
                    "Name": name,
                    "Server": server_id(s),
                    "SSLOffloading": s.ssl_offloading,
                    "ExternalHostname": f"mail.{s.fqdn.partition('.')[2]}",
                    "InternalHostname": s.fqdn,
                    "ExternalClientsRequireSsl": True,
                    "InternalClientsRequireSsl": True,
                    "ExtendedProtectionTokenChecking": None
                    if call.switch("ADPropertiesOnly")
                    else ps.enum(f"{SYSCONF}.ExtendedProtectionTokenCheckingMode", app.token_checking if app else "None"),
                    "MetabasePath": f"IIS://{s.fqdn}/W3SVC/1/ROOT/Rpc",
                    "AdminDisplayVersion": version(s.admin_display_version),
                    "Identity": f"{s.name.upper()}\\{name}",
                },
                to_string=f"{s.name.upper()}\\{name}",
            )
        )
    return out
