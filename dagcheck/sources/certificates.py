"""Certificates: Get-ExchangeCertificate (each server's store), Get-AuthConfig (the organisation's OAuth
certificate) and HTTP.sys's TLS bindings (`netsh http show sslcert`: which certificate IIS serves).

Get-ExchangeCertificate may carry only RawData: CSS-Exchange's HealthChecker capture
(Diagnostics/HealthChecker/Tests/DataCollection/E19/Exchange/GetExchangeCertificate.xml) has nothing else,
and CSS-Exchange explains when (Shared/CertificateFunctions/Import-ExchangeCertificateFromRawData.ps1: with
serialization data signing on and the Auth certificate expired or missing, "the 'Get-ExchangeCertificate'
cmdlet fails to deserialize and so, only RawData (byte[]) will be returned"). So the thumbprint, subject,
SANs and NotAfter are read from the X.509 itself (cryptography), and the properties are used only when there
is no RawData. Without `Services`, what IIS serves is read from HTTP.sys (the certificate hash bound to
0.0.0.0:443, the Default Web Site, and 0.0.0.0:444, Exchange Back End), and what SMTP uses from the receive
connectors' TlsCertificateName (`<I>issuer<S>subject`); Exchange's default SMTP certificate
(msExchServerInternalTLSCert in AD, which HealthChecker reads over LDAP) is not reachable through the
Exchange endpoint and is not read.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from dagcheck.errors import ParseError
from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult, Command, Endpoint
from dagcheck.sources.base import HostSource, Source
from dagcheck.sources.values import flag_names, prop, short_name, text

GET_CERT = "Get-ExchangeCertificate"
GET_AUTH = "Get-AuthConfig"
SSLCERT_LINE = "netsh http show sslcert"


def certificate_command(server: str) -> Command:
    return Command.of(GET_CERT, Server=server)


def auth_config_command(_dag: str | None) -> Command:
    """Organisation-wide (AD): the same from every server, so asked once per DAG and phase."""
    return Command.of(GET_AUTH)


@dataclass(frozen=True)
class ExchangeCertificate:
    """One certificate of a server's store, as Get-ExchangeCertificate lists it (or its RawData says)."""

    server: str
    thumbprint: str
    subject: str
    services: tuple[str, ...]  # AllowedServices flags: IMAP, POP, IIS, SMTP ...; () when unknown or none
    not_after: dt.datetime | None
    issuer: str = ""
    domains: tuple[str, ...] = ()  # the SANs' DNS names (CertificateDomains)
    not_before: dt.datetime | None = None
    services_known: bool = True  # False: the object carried no Services (RawData only)

    @property
    def key(self) -> str:
        return f"{self.server}:{self.thumbprint}"


def _name(value: x509.Name) -> str:
    """A distinguished name as Windows shows it: 'CN=mail.contoso.com, O=Contoso, C=US'."""
    return ", ".join(rdn.rfc4514_string() for rdn in reversed(value.rdns))


def _der(raw: Any, label: str) -> bytes:
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(GET_CERT, label, raw, "RawData: the certificate's DER bytes (or their base64)") from None


def from_der(der: bytes, server: str, label: str = "RawData") -> dict[str, Any]:
    """Thumbprint (SHA-1 of the DER, as Windows computes it), subject, issuer, SANs and validity of a certificate."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise ParseError(GET_CERT, label, f"{len(der)} bytes", f"an X.509 certificate in DER ({exc})") from None
    try:
        sans = tuple(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        sans = ()
    return {
        "thumbprint": hashlib.sha1(der).hexdigest().upper(),
        "subject": _name(cert.subject),
        "issuer": _name(cert.issuer),
        "domains": sans,
        "not_after": cert.not_valid_after_utc,
        "not_before": cert.not_valid_before_utc,
    }


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_exchange_certificate(obj: Any, server: str) -> ExchangeCertificate:
    raw = prop(obj, "RawData")
    services_value = prop(obj, "Services")
    if raw is not None:
        fields = from_der(_der(raw, "RawData"), server)
    else:
        thumbprint = prop(obj, "Thumbprint")
        if thumbprint in (None, ""):
            raise ParseError(GET_CERT, "Thumbprint", thumbprint, "a thumbprint, or RawData to read it from")
        not_after = _utc(prop(obj, "NotAfter"))
        if not_after is None:
            raise ParseError(GET_CERT, f"{thumbprint}.NotAfter", prop(obj, "NotAfter"), "a DateTime, or RawData")
        fields = {
            "thumbprint": str(thumbprint).upper(),
            "subject": text(prop(obj, "Subject")) or "",
            "issuer": text(prop(obj, "Issuer")) or "",
            "not_after": not_after,
            "not_before": _utc(prop(obj, "NotBefore")),
            "domains": tuple(str(d) for d in (prop(obj, "CertificateDomains") or ())),
        }
    services = flag_names(obj, GET_CERT, "Services", f"{fields['thumbprint']}.Services") if services_value is not None else ()
    return ExchangeCertificate(
        short_name(server),
        fields["thumbprint"],
        fields["subject"],
        tuple(s for s in services if s != "None"),
        fields["not_after"],
        fields["issuer"],
        tuple(fields["domains"]),
        fields["not_before"],
        services_value is not None,
    )


@dataclass(frozen=True)
class AuthConfig:
    """Get-AuthConfig: the certificate that signs server-to-server OAuth tokens, and the one due next."""

    current_thumbprint: str | None
    next_thumbprint: str | None
    next_effective: dt.datetime | None
    previous_thumbprint: str | None = None

    @property
    def key(self) -> str:
        return "AuthConfig"


def _thumb(value: Any) -> str | None:
    return str(value).strip().upper() or None if value not in (None, "") else None


def parse_auth_config(obj: Any, server: str = "") -> AuthConfig:
    return AuthConfig(
        _thumb(prop(obj, "CurrentCertificateThumbprint")),
        _thumb(prop(obj, "NextCertificateThumbprint")),
        _utc(prop(obj, "NextCertificateEffectiveDate")),
        _thumb(prop(obj, "PreviousCertificateThumbprint")),
    )


@dataclass(frozen=True)
class SslBinding:
    """One HTTP.sys TLS binding: the IP:port and the certificate hash it serves."""

    server: str
    endpoint: str  # "0.0.0.0:443"; "[::]:443"; a host name:port for SNI bindings
    thumbprint: str
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.server}:{self.endpoint}"

    @property
    def site(self) -> str:
        """The Exchange web site behind the port (443 Default Web Site, 444 Exchange Back End)."""
        port = self.endpoint.rsplit(":", 1)[-1]
        return {"443": "IIS Default Web Site", "444": "IIS Exchange Back End"}.get(port, f"HTTP.sys {self.endpoint}")


_BINDING = re.compile(r"^\s*(IP:port|Hostname:port)\s*:\s*(\S+)\s*$", re.IGNORECASE)
_HASH = re.compile(r"^\s*Certificate Hash\s*:\s*([0-9A-Fa-f]{40})\s*$")


def parse_sslcert(results: list[CmdResult], server: str) -> list[SslBinding]:
    """`netsh http show sslcert`: blocks of 'IP:port : 0.0.0.0:443' then 'Certificate Hash : <sha1>'. A
    failed command is one binding-less entry with the reason (the checks that need bindings fail with it)."""
    result = results[0]
    if result.rc != 0:
        return [SslBinding(short_name(server), "", "", (result.stderr or result.stdout).strip() or f"exit code {result.rc}")]
    out: list[SslBinding] = []
    endpoint = None
    for line in result.stdout.splitlines():
        if m := _BINDING.match(line):
            endpoint = m.group(2)
        elif (m := _HASH.match(line)) and endpoint:
            out.append(SslBinding(short_name(server), endpoint, m.group(1).upper()))
            endpoint = None
    return out


def tls_certificate_names(connectors: tuple[Any, ...]) -> dict[str, str]:
    """Receive connector name -> its TlsCertificateName, for connectors that name one."""
    return {c.name: c.tls_certificate_name for c in connectors if getattr(c, "tls_certificate_name", None)}


def _sslcert_lines(server: str, expectations: Expectations) -> list[str]:
    return [SSLCERT_LINE]


def _parse_sslcert(results: list[CmdResult], server: str, expectations: Expectations) -> list[SslBinding]:
    return parse_sslcert(results, server)


CERTIFICATES_SOURCE = Source("certificates", Endpoint.EXCHANGE, certificate_command, parse_exchange_certificate)
# Organisation-wide (AD): asked once per DAG and phase, like the DAG's own status.
AUTH_CONFIG_SOURCE = Source("auth_config", Endpoint.EXCHANGE, auth_config_command, parse_auth_config, dag_wide=True)
# Which certificate IIS serves (HTTP.sys bindings on 443 and 444), where Get-ExchangeCertificate has no Services.
SSL_BINDINGS_SOURCE = HostSource("ssl_bindings", _sslcert_lines, _parse_sslcert)
