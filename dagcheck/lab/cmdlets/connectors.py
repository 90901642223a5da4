"""Configuration a CU must leave alone: Get-ReceiveConnector and Get-ExchangeCertificate.

Shapes: property names and value forms are Microsoft Learn's (Get-ReceiveConnector, Get-ExchangeCertificate).
Guessed, with no capture here: the [Flags] properties (AuthMechanism, PermissionGroups, Services) are
served as their ToString text ("Tls, Integrated, ...") in both shapes, and Bindings/RemoteIPRanges
(IPBinding, IPRange) as their string forms ("0.0.0.0:25", "0.0.0.0-255.255.255.255").
"""

from __future__ import annotations

from typing import Any

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
            out.append(ps.obj(
                [f"{SYSCONF}.ReceiveConnector", f"{SYSCONF}.ADConfigurationObject", f"{ps.EX}.Data.Directory.ADObject",
                 f"{ps.EX}.Data.Directory.ADRawEntry", *ps.CONFIGURABLE],
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
            ))
    return out


@cmdlet("Get-ExchangeCertificate", "Identity", "Server", "Thumbprint")
def get_exchange_certificate(call: Call) -> list[Any]:
    out = []
    for s in target_servers(call, "Server"):
        for cert in s.certificates:
            if call.get("Thumbprint") not in (None, "") and str(call.get("Thumbprint")).upper() != cert.thumbprint:
                continue
            out.append(ps.obj(
                ["Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate",
                 "System.Security.Cryptography.X509Certificates.X509Certificate2",
                 "System.Security.Cryptography.X509Certificates.X509Certificate", "System.Object"],
                {
                    "Thumbprint": cert.thumbprint,
                    "Subject": cert.subject,
                    "Issuer": cert.subject,
                    "Services": cert.services,
                    "NotAfter": cert.not_after,
                    "Status": "Valid",
                    "Identity": f"{s.fqdn}\\{cert.thumbprint}",
                },
                to_string=f"[Subject]\n  {cert.subject}\n\n[Thumbprint]\n  {cert.thumbprint}",
            ))
    return out
