"""Configuration a CU must leave alone: Get-ReceiveConnector, Get-ExchangeCertificate and Get-AuthConfig.

Shapes: property names and value forms are Microsoft Learn's (Get-ReceiveConnector, Get-ExchangeCertificate).
Guessed, with no capture here: the [Flags] properties (AuthMechanism, PermissionGroups, Services) are
served as their ToString text ("Tls, Integrated, ...") in both shapes, and Bindings/RemoteIPRanges
(IPBinding, IPRange) as their string forms ("0.0.0.0:25", "0.0.0.0-255.255.255.255").
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from psrpcore.types import PSByteArray

from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import SYSCONF, Call, cmdlet, lookup_server, server_id, target_servers

EXDATA = "Microsoft.Exchange.Data"
ROLE = f"{SYSCONF}.ServerRole"


def _servers(call: Call) -> list[Any]:
    return [lookup_server(call, call.get("Server"))] if call.get("Server") else list(call.org.servers.values())


@cmdlet("Get-ReceiveConnector", "Identity", "Server")
def get_receive_connector(call: Call) -> list[Any]:
    out = []
    for s in _servers(call):
        for c in s.receive_connectors:
            identity = f"{s.name.upper()}\\{c.name}"
            wanted = str(call.get("Identity") or "").lower()
            if wanted and wanted not in (identity.lower(), c.name.lower()):
                continue
            out.append(
                ps.obj(
                    [
                        f"{SYSCONF}.ReceiveConnector",
                        f"{SYSCONF}.ADConfigurationObject",
                        f"{ps.EX}.Data.Directory.ADObject",
                        f"{ps.EX}.Data.Directory.ADRawEntry",
                        *ps.CONFIGURABLE,
                    ],
                    {
                        "Name": c.name,
                        "Server": server_id(s),
                        "TransportRole": ps.enum(ROLE, c.transport_role),
                        "Bindings": ps.mvp(c.bindings, element=f"{EXDATA}.IPBinding, Microsoft.Exchange.Data"),
                        "RemoteIPRanges": ps.mvp(c.remote_ip_ranges, element=f"{EXDATA}.IPRange, Microsoft.Exchange.Data"),
                        "AuthMechanism": c.auth_mechanism,
                        "PermissionGroups": c.permission_groups,
                        "Enabled": c.enabled,
                        "Fqdn": s.fqdn,
                        "Identity": identity,
                    },
                    to_string=c.name,
                )
            )
    return out


@cmdlet("Get-ExchangeCertificate", "Identity", "Server", "Thumbprint")
def get_exchange_certificate(call: Call) -> list[Any]:
    """The certificates of a server's store. RawData is the DER certificate itself (dagcheck.lab.certificates).
    While the organisation's Auth certificate is expired, Exchange cannot sign the objects' serialization
    data and they arrive as RawData only (CSS-Exchange Shared/CertificateFunctions/
    Import-ExchangeCertificateFromRawData.ps1: "The 'Get-ExchangeCertificate' cmdlet fails to deserialize
    and so, only RawData (byte[]) will be returned"; the E19 capture has exactly that shape). Guessed: that a
    /PowerShell client sees the same RawData-only objects."""
    now = dt.datetime.now(dt.UTC)
    auth = call.org.auth_config.current_thumbprint
    out = []
    for s in target_servers(call, "Server"):
        signing = next((c for c in s.certificates if c.thumbprint == auth), None)
        raw_only = signing is None or signing.not_after <= now
        for cert in s.certificates:
            if call.get("Thumbprint") not in (None, "") and str(call.get("Thumbprint")).upper() != cert.thumbprint:
                continue
            props: dict[str, Any] = {"RawData": PSByteArray(base64.b64decode(cert.raw))} if cert.raw else {}
            if not raw_only:
                props = {
                    "CertificateDomains": ps.mvp(cert.domains, element=f"{EXDATA}.SmtpDomainWithSubdomains, {EXDATA}"),
                    "IsSelfSigned": True,
                    "Issuer": cert.subject,
                    "NotAfter": cert.not_after,
                    "NotBefore": cert.not_before or cert.not_after - dt.timedelta(days=365),
                    "Services": cert.services,
                    "Status": "Valid" if cert.not_after > now else "DateInvalid",
                    "Subject": cert.subject,
                    "Thumbprint": cert.thumbprint,
                    "Identity": f"{s.fqdn}\\{cert.thumbprint}",
                    **props,
                }
            out.append(
                ps.obj(
                    [
                        "Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate",
                        "System.Security.Cryptography.X509Certificates.X509Certificate2",
                        "System.Security.Cryptography.X509Certificates.X509Certificate",
                        "System.Object",
                    ],
                    props,
                    to_string=(
                        f"[Subject]\r\n  {cert.subject}\r\n\r\n[Issuer]\r\n  {cert.subject}\r\n\r\n"
                        f"[Not After]\r\n  {cert.not_after:%m/%d/%Y %H:%M:%S}\r\n\r\n[Thumbprint]\r\n  {cert.thumbprint}\r\n"
                    ),
                )
            )
    return out


@cmdlet("Get-AuthConfig")
def get_auth_config(call: Call) -> list[Any]:
    """The organisation's OAuth configuration (Learn, Get-AuthConfig; the properties HealthChecker reads:
    CurrentCertificateThumbprint, PreviousCertificateThumbprint, NextCertificateThumbprint,
    NextCertificateEffectiveDate). Guessed: ServiceName and Realm's values in a lab with no hybrid."""
    auth = call.org.auth_config
    return [
        ps.obj(
            [
                f"{SYSCONF}.AuthConfig",
                f"{SYSCONF}.ADConfigurationObject",
                f"{ps.EX}.Data.Directory.ADObject",
                f"{ps.EX}.Data.Directory.ADRawEntry",
                *ps.CONFIGURABLE,
            ],
            {
                "CurrentCertificateThumbprint": auth.current_thumbprint,
                "PreviousCertificateThumbprint": auth.previous_thumbprint,
                "NextCertificateThumbprint": auth.next_thumbprint,
                "NextCertificateEffectiveDate": auth.next_effective,
                "ServiceName": "00000002-0000-0ff1-ce00-000000000000",
                "Realm": "",
                "Name": "Auth Configuration",
                "Identity": "Auth Configuration",
            },
            to_string="Auth Configuration",
        )
    ]
