"""Certificates: the organisation's Auth certificate on every server, and no IIS/SMTP certificate about to expire."""

from __future__ import annotations

import datetime as dt

from dagcheck.catalogue import check, require
from dagcheck.collect import Snapshot
from dagcheck.inventory import Expectations
from dagcheck.rules.certificates import auth_problems, bound_to, days_left, describe
from dagcheck.sources.certificates import ExchangeCertificate, tls_certificate_names


@check(
    "DAG-CERT-001",
    "The Exchange Auth certificate is on the server and not expired",
    severity="critical",
    rationale="Exchange signs server-to-server OAuth tokens with the certificate Get-AuthConfig names; an expired "
    "or missing Auth certificate breaks OWA and ECP sign-in and the Exchange Management Shell (Learn, 'Fix "
    "failed Exchange Server updates'; Learn, Set-AuthConfig), and "
    "Get-ExchangeCertificate then returns RawData only (CSS-Exchange Import-ExchangeCertificateFromRawData.ps1). "
    "The current certificate, and the next one when it is set, must be in every server's store.",
    remediation="Renew it: New-ExchangeCertificate -KeySize 2048 -PrivateKeyExportable $true -SubjectName "
    "'cn=Microsoft Exchange Server Auth Certificate' -DomainName @() -Services SMTP, then Set-AuthConfig "
    "-NewCertificateThumbprint <thumbprint> -NewCertificateEffectiveDate (Get-Date); Set-AuthConfig -PublishCertificate; "
    "restart WAS and W3SVC on {server} (or run CSS-Exchange MonitorExchangeAuthCertificate.ps1)",
    phases=("health", "preflight", "postflight"),
    source="certificates",
    per_server=True,
)
def test_auth_certificate_valid(item: tuple[ExchangeCertificate, ...], snapshot: Snapshot, now: dt.datetime) -> None:
    auth = snapshot.get("auth_config")[0]
    problems = auth_problems(auth, item, snapshot.server, now)
    require(
        not problems,
        f"{snapshot.server}: {'; '.join(problems)}",
        expected=f"Auth certificate {auth.current_thumbprint} present and valid on {snapshot.server}",
        actual="; ".join(problems),
    )


def _in_use(item: tuple[ExchangeCertificate, ...], snapshot: Snapshot) -> list[tuple[ExchangeCertificate, tuple[str, ...]]]:
    """The server's certificates bound to IIS or SMTP, with where. HTTP.sys's bindings are needed only when
    the objects carried no Services (RawData only); the receive connectors name SMTP certificates either way."""
    bindings = () if snapshot.failed("ssl_bindings") and all(c.services_known for c in item) else snapshot.get("ssl_bindings")
    broken = [b.error for b in bindings if b.error]
    require(
        not broken or all(c.services_known for c in item),
        f"the certificates on {snapshot.server} show no Services and HTTP.sys's bindings could not be read: "
        f"{broken[0] if broken else ''}",
        expected="netsh http show sslcert output",
        actual=broken[0] if broken else "",
    )
    connectors = tls_certificate_names(snapshot.get("receive_connectors"))
    used = [(c, bound_to(c, bindings, connectors)) for c in item]
    return [(c, where) for c, where in used if any(w.startswith(("IIS", "SMTP")) for w in where)]


def _expiring(item: tuple[ExchangeCertificate, ...], snapshot: Snapshot, now: dt.datetime, days: int) -> list[str]:
    return [
        f"{describe(c)}, bound to {', '.join(where)}, "
        + (f"expired {-left:.0f} day(s) ago" if left <= 0 else f"expires in {left:.1f} day(s)")
        + (f" ({c.not_after:%Y-%m-%d})" if c.not_after else "")
        for c, where in _in_use(item, snapshot)
        if (left := days_left(c, now)) <= days
    ]


@check(
    "DAG-CERT-002",
    "No certificate bound to IIS or SMTP expires within the warning period",
    severity="warning",
    rationale="An expired IIS certificate stops every HTTPS client (OWA, Outlook, ActiveSync, EWS) and an expired SMTP "
    "certificate stops TLS mail flow; renewal takes lead time (a CA, Import-ExchangeCertificate on every server, "
    "Enable-ExchangeCertificate). What is bound is read from Get-ExchangeCertificate's Services or, when it carries "
    "only RawData, from HTTP.sys (netsh http show sslcert) and the receive connectors' TlsCertificateName. "
    "The period is expectations.certificates.warning_days (default 30).",
    remediation="Renew the certificate, Import-ExchangeCertificate it on {server} and Enable-ExchangeCertificate "
    "-Thumbprint <new> -Services IIS,SMTP",
    phases=("health", "postflight"),
    source="certificates",
    per_server=True,
)
def test_certificates_not_expiring_soon(
    item: tuple[ExchangeCertificate, ...], snapshot: Snapshot, now: dt.datetime, expect: Expectations
) -> None:
    soon = _expiring(item, snapshot, now, expect.cert_warning_days)
    require(
        not soon,
        f"{snapshot.server}: {'; '.join(soon)}",
        expected=f"more than {expect.cert_warning_days} days left",
        actual="; ".join(soon),
    )


@check(
    "DAG-CERT-003",
    "No certificate bound to IIS or SMTP expires within the critical period",
    severity="critical",
    rationale="Within days of expiry there is no time left to renew before clients and mail flow break (see "
    "DAG-CERT-002); expectations.certificates.critical_days (default 7).",
    remediation="Renew the certificate now, Import-ExchangeCertificate it on {server} and Enable-ExchangeCertificate "
    "-Thumbprint <new> -Services IIS,SMTP",
    phases=("health", "preflight", "postflight"),
    source="certificates",
    per_server=True,
)
def test_certificates_not_expiring_critically(
    item: tuple[ExchangeCertificate, ...], snapshot: Snapshot, now: dt.datetime, expect: Expectations
) -> None:
    soon = _expiring(item, snapshot, now, expect.cert_critical_days)
    require(
        not soon,
        f"{snapshot.server}: {'; '.join(soon)}",
        expected=f"more than {expect.cert_critical_days} days left",
        actual="; ".join(soon),
    )
