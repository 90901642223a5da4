"""Which certificate serves IIS or SMTP, and how long it has left: pure functions over collected snapshots."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from dagcheck.sources.certificates import AuthConfig, ExchangeCertificate, SslBinding

_TLS_NAME = re.compile(r"^<I>(?P<issuer>.*)<S>(?P<subject>.*)$", re.IGNORECASE)


def _dn(value: str) -> str:
    return ",".join(part.strip().lower() for part in value.split(","))


def tls_name_matches(tls_certificate_name: str, cert: ExchangeCertificate) -> bool:
    """Whether a connector's TlsCertificateName ('<I>issuer<S>subject', Learn: Set-ReceiveConnector
    -TlsCertificateName) names this certificate."""
    m = _TLS_NAME.match(tls_certificate_name.strip())
    return m is not None and _dn(m["issuer"]) == _dn(cert.issuer) and _dn(m["subject"]) == _dn(cert.subject)


def bound_to(cert: ExchangeCertificate, bindings: Iterable[SslBinding], connector_names: dict[str, str]) -> tuple[str, ...]:
    """Where the certificate is in use: Exchange's own Services flags when the object carried them, HTTP.sys's
    TLS bindings (what IIS really serves), and receive connectors that name it for STARTTLS."""
    uses = [f"{service} (Services)" for service in ("IIS", "SMTP") if service in cert.services]
    uses += [f"{b.site} ({b.endpoint})" for b in bindings if b.thumbprint == cert.thumbprint]
    uses += [f"SMTP (receive connector {name})" for name, tls in sorted(connector_names.items()) if tls_name_matches(tls, cert)]
    return tuple(dict.fromkeys(uses))


def days_left(cert: ExchangeCertificate, now: dt.datetime) -> float:
    """Days until NotAfter (negative once expired); a certificate without NotAfter never counts as valid."""
    if cert.not_after is None:
        return float("-inf")
    return (cert.not_after - now).total_seconds() / 86400


def describe(cert: ExchangeCertificate) -> str:
    return f"{cert.subject or '(no subject)'} ({cert.thumbprint})"


def auth_problems(auth: AuthConfig, certs: Iterable[ExchangeCertificate], server: str, now: dt.datetime) -> list[str]:
    """Why the organisation's Auth certificate does not serve this server: the current one missing from its
    store or expired, or the next one (when one is due) missing from it."""
    by_thumb = {c.thumbprint: c for c in certs}
    if not auth.current_thumbprint:
        return ["Get-AuthConfig names no CurrentCertificateThumbprint"]
    problems = []
    current = by_thumb.get(auth.current_thumbprint)
    if current is None:
        problems.append(f"the Auth certificate {auth.current_thumbprint} is not on {server}")
    elif current.not_after is None:
        problems.append(f"the Auth certificate {describe(current)} shows no NotAfter")
    elif days_left(current, now) <= 0:
        problems.append(f"the Auth certificate {describe(current)} expired on {current.not_after:%Y-%m-%d %H:%M} UTC")
    if auth.next_thumbprint and auth.next_thumbprint not in by_thumb:
        due = f" (effective {auth.next_effective:%Y-%m-%d})" if auth.next_effective else ""
        problems.append(f"the next Auth certificate {auth.next_thumbprint}{due} is not on {server}")
    return problems
