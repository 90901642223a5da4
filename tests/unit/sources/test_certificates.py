"""Certificates read from the X.509 itself, what serves IIS and SMTP, and the Auth certificate's verdicts."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest

from dagcheck.clixml import from_clixml_text, from_file
from dagcheck.remote.base import CmdResult
from dagcheck.rules import certificates as rules
from dagcheck.sources import certificates as src
from tests import shared_fixtures
from tests.conftest import ROOT

# Two certificates of the CSS-Exchange HealthChecker capture (microsoft/CSS-Exchange, MIT, commit 689e26ed,
# Diagnostics/HealthChecker/Tests/DataCollection/E19/Exchange/GetExchangeCertificate.xml): their RawData, and
# what Windows' own ToString says of them (the independent oracle: thumbprint, subject, Not After in local time).
AUTH_RAW = (
    "MIIDKTCCAhGgAwIBAgIQIq7Ff1SGnb1LKsn6TBSriTANBgkqhkiG9w0BAQUFADA1MTMwMQYDVQQDEypNaWNyb3NvZnQgRXhjaGFuZ2UgU2Vy"
    "dmVyIEF1dGggQ2VydGlmaWNhdGUwHhcNMTkxMjAzMjI0NzMyWhcNMjQxMTA2MjI0NzMyWjA1MTMwMQYDVQQDEypNaWNyb3NvZnQgRXhjaGFu"
    "Z2UgU2VydmVyIEF1dGggQ2VydGlmaWNhdGUwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDLSA5XrpzHxBO5F00KPhPdqzyE+uLW"
    "83cD0yvMkhuhOPfJxMb+cKzzYjiIGAX63hVfC/fArRiwrR31xQ0kb5MnhxmcpzjWVmkAt4EI8gvN+TQofZPggwqydbKuTZw9wv6S9M1gRjlT"
    "MYU3xl5oFwjyPXqZrMt2soYjYIla3kelXNQvjit51BPe3rX6jvATRwRFXnUxDvZ+PtmpLZ1NvXTTYYh7jwp7iXqLqafMfUhOBFvgBfpYi50H"
    "ivMtKVR1yS+xgmgGoKoL9wZIfXCM/UfNfRBmWuWaNkef9PTYt3vvNRiJZSmhkxJ3nH0miwlaTZV2cp0BdLch0QczHMbmQHa5AgMBAAGjNTAz"
    "MA4GA1UdDwEB/wQEAwIFoDATBgNVHSUEDDAKBggrBgEFBQcDATAMBgNVHRMBAf8EAjAAMA0GCSqGSIb3DQEBBQUAA4IBAQB+F87oEX/OoA6x"
    "T40iMfyAzyIpGr0ANUNWoS5ojO6Xupa4CkigxNLf/EdTNAQhp1K3+4kS+vBEpJaowjlp6v/LZbCHMxfxtIxsDp2cuvIje+Br414ssAGJPqLp"
    "SZhs2ot5f7uIcQJHAqY5fE5mRmAO+oJcS3tvvE577Otp+au6S9qxU191XEcQ/00EzYfGoNLBl4ZiLDwIUtyBTA7qC2idDepqWfiBE3IazCuR"
    "OWwnvrEuG/zl8TSbHegwTEwalCrHLlJgPOZ8wNmktUonOdG90mnEurS5/xprB15RgHKwXG++/3hFX+1Sc4/ykNOoMpsO2DzdZZljTBuYBrAQ"
    "Mgug"
)
SELF_RAW = (
    "MIIDETCCAfmgAwIBAgIQaCaDZNC6fqFDv1CGpan7ODANBgkqhkiG9w0BAQUFADAUMRIwEAYDVQQDEwlTb2xvLUUxOUEwHhcNMTkxMjAzMjI0"
    "NTU4WhcNMjQxMjAzMjI0NTU4WjAUMRIwEAYDVQQDEwlTb2xvLUUxOUEwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDp6z8qqO2y"
    "8ULD+z8UAQ0CQScuLHsYRSBlH1pFq1z7WCfvzLuAqU2vVJkwFKEWj3HsyX8mFscTdfIlqNpj2wERXN/mmJFMG0MMSjpWn5RanEPvAgfVPa8I"
    "/oYmHrodXxrvrrhE4eELy/uDriupcug3nPZ1qUuoXcNLVA8wOhp9Fd1NtV4TXqaw5iOQeqlZV96ZBbp5t3DHUTOpRxNZX4lDUH0jdkfcwP9j"
    "6ZEmwN4HVYzYKp5bOve8JNL0kkrbHC/qaF8EP04cmuZeS7lcaxV20rCqpwvKxQjijUm6GxumbKF1+O6qa4/dRHFAW0lH+XPufs+srDKoQebd"
    "S52ccpvRAgMBAAGjXzBdMA4GA1UdDwEB/wQEAwIFoDAoBgNVHREEITAfgglTb2xvLUUxOUGCElNvbG8tRTE5QS5Tb2xvLmNvbTATBgNVHSUE"
    "DDAKBggrBgEFBQcDATAMBgNVHRMBAf8EAjAAMA0GCSqGSIb3DQEBBQUAA4IBAQDn/PV6dOr6+uRurwBH+nUfpiDsx+/WVjDLHHEXeokeZ/+z"
    "D5HjObaydn7Wb603ETQG7whghPQRvpvchwS4V7L8hYQN6kCzzppZYJrw6DFS/8tmBXZprqQhyypCpORqFv2ncVReXh1bJ7hrg5VTzlYmooI/"
    "u1UKCxFhKtu4pIFkpTIOdMRWFgLxBACPgSNK5iz5r/DelyrvlkzQA7Tiz2h9wnTGP4v6sGs09quto8dfQENEiyeRh4SgSE4erAJCmzAUIMs+"
    "k6kyjCP+jkn28uPMPN7CyP2n3VmsRpXRaNaXJ67dply/dT+MHkXuwojBrmob7oCLYvQ2aop/EeRfQbwz"
)
CAPTURE = shared_fixtures.css_exchange("E19") / "GetExchangeCertificate.xml"


def _capture_shaped(*raws: str) -> str:
    """CLIXML in the capture's shape: the ExchangeCertificate type names, a ToString, Props with RawData only."""
    objs = "".join(
        f'<Obj RefId="{i}"><TN RefId="{i}"><T>Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate</T>'
        "<T>System.Security.Cryptography.X509Certificates.X509Certificate2</T>"
        "<T>System.Security.Cryptography.X509Certificates.X509Certificate</T><T>System.Object</T></TN>"
        f'<ToString>[Subject]</ToString><Props><BA N="RawData">{raw}</BA></Props>'
        '<MS><S N="PSComputerName">solo-e19a.solo.com</S></MS></Obj>'
        for i, raw in enumerate(raws)
    )
    return f'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">{objs}</Objs>'


def test_raw_data_only_certificates_are_read_from_the_x509() -> None:
    auth, own = (src.parse_exchange_certificate(o, "Solo-E19A") for o in from_clixml_text(_capture_shaped(AUTH_RAW, SELF_RAW)))
    # Windows' ToString in the capture: thumbprints C3EDCF18... and 6C7DE09F..., Not After 11/06/2024 14:47:32 local.
    assert auth.thumbprint == "C3EDCF181EF4F9B53D01768ECA99564014BCA6E7"
    assert auth.subject == "CN=Microsoft Exchange Server Auth Certificate" and auth.domains == ()
    assert auth.not_after == dt.datetime(2024, 11, 6, 22, 47, 32, tzinfo=dt.UTC)
    assert own.thumbprint == "6C7DE09FB39A40144F57EFEBC3DF0148E3A9AB28"
    assert own.domains == ("Solo-E19A", "Solo-E19A.Solo.com") and own.issuer == "CN=Solo-E19A"
    assert not own.services_known and own.services == () and own.key == "solo-e19a:6C7DE09FB39A40144F57EFEBC3DF0148E3A9AB28"


def test_properties_are_used_when_there_is_no_raw_data() -> None:
    xml = (
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj RefId="0"><Props>'
        '<S N="Thumbprint">ab12</S><S N="Subject">CN=mail.contoso.com</S><S N="Services">IMAP, POP, IIS, SMTP</S>'
        '<DT N="NotAfter">2027-01-01T00:00:00Z</DT></Props></Obj></Objs>'
    )
    cert = src.parse_exchange_certificate(from_clixml_text(xml)[0], "ex1")
    assert (cert.thumbprint, cert.services, cert.services_known) == ("AB12", ("IIS", "IMAP", "POP", "SMTP"), True)


@shared_fixtures.needs(CAPTURE.parent)
def test_replay_of_the_css_exchange_certificate_capture() -> None:
    if not CAPTURE.is_file():
        pytest.skip(
            f"{CAPTURE} is not in the shared fixtures (CSS-Exchange has it at "
            "Diagnostics/HealthChecker/Tests/DataCollection/E19/Exchange/GetExchangeCertificate.xml)"
        )
    certs = [src.parse_exchange_certificate(o, "Solo-E19A") for o in from_file(CAPTURE)]
    assert {"C3EDCF181EF4F9B53D01768ECA99564014BCA6E7", "6C7DE09FB39A40144F57EFEBC3DF0148E3A9AB28"} <= {
        c.thumbprint for c in certs
    }
    assert all(c.not_after is not None for c in certs)


SSLCERT = (
    "\r\nSSL Certificate bindings:\r\n-------------------------\r\n\r\n"
    "    IP:port                      : 0.0.0.0:443\r\n"
    "    Certificate Hash             : d0da0b35cf91c55b91a10755c0b4b11dfb1d3ff9\r\n"
    "    Application ID               : {4dc3e181-e14b-4a21-b022-59fc669b0914}\r\n\r\n"
    "    IP:port                      : 0.0.0.0:444\r\n"
    "    Certificate Hash             : c71d3d6f9673dcec57d8c76602562d58bd69d9b9\r\n"
)


def test_http_sys_bindings_name_what_iis_serves() -> None:
    front, back = src.parse_sslcert([CmdResult(0, SSLCERT, "")], "EX1")
    assert (front.endpoint, front.thumbprint, front.site) == (
        "0.0.0.0:443",
        "D0DA0B35CF91C55B91A10755C0B4B11DFB1D3FF9",
        "IIS Default Web Site",
    )
    assert back.site == "IIS Exchange Back End"
    (failed,) = src.parse_sslcert([CmdResult(1, "", "The requested operation requires elevation.")], "EX1")
    assert failed.error == "The requested operation requires elevation."


def _cert(thumb: str, subject: str, not_after: dt.datetime, services: tuple[str, ...] = (), known: bool = False):
    return src.ExchangeCertificate("ex1", thumb, subject, services, not_after, issuer=subject, services_known=known)


NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def test_without_services_iis_comes_from_http_sys_and_smtp_from_the_connectors() -> None:
    iis = _cert("D0DA0B35CF91C55B91A10755C0B4B11DFB1D3FF9", "CN=mail.contoso.com", NOW)
    smtp = _cert("AA", "CN=smtp.contoso.com, O=Contoso", NOW)
    bindings = src.parse_sslcert([CmdResult(0, SSLCERT, "")], "EX1")
    connectors = {"Default Frontend EX1": "<I>CN=smtp.contoso.com,O=Contoso<S>CN=smtp.contoso.com, O=Contoso"}
    assert rules.bound_to(iis, bindings, connectors) == ("IIS Default Web Site (0.0.0.0:443)",)
    assert rules.bound_to(smtp, bindings, connectors) == ("SMTP (receive connector Default Frontend EX1)",)
    assert rules.bound_to(_cert("BB", "CN=other", NOW), bindings, connectors) == ()


def test_auth_certificate_missing_expired_or_next_not_deployed() -> None:
    good = _cert("A1", src.GET_AUTH, NOW + dt.timedelta(days=100))
    assert rules.auth_problems(src.AuthConfig("A1", None, None), [good], "ex1", NOW) == []
    assert rules.auth_problems(src.AuthConfig("B2", None, None), [good], "ex1", NOW) == ["the Auth certificate B2 is not on ex1"]
    expired = _cert("A1", "CN=Microsoft Exchange Server Auth Certificate", NOW - dt.timedelta(hours=1))
    assert "expired on 2026-12-06 23:00 UTC" in rules.auth_problems(src.AuthConfig("A1", None, None), [expired], "ex1", NOW)[0]
    due = src.AuthConfig("A1", "C3", NOW + dt.timedelta(days=2))
    assert rules.auth_problems(due, [good], "ex1", NOW) == ["the next Auth certificate C3 (effective 2026-12-09) is not on ex1"]


def test_lab_certificates_are_real_x509_whose_thumbprint_is_their_sha1() -> None:
    from dagcheck.inventory import load_inventory
    from dagcheck.lab.build import build_organization

    org = build_organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    certs = org.server("mbx1").certificates
    for cert in certs:
        der = base64.b64decode(cert.raw)
        assert hashlib.sha1(der).hexdigest().upper() == cert.thumbprint == src.from_der(der, "mbx1")["thumbprint"]
    # The Auth certificate is the organisation's: the same one in every server's store.
    assert all(any(c.thumbprint == org.auth_config.current_thumbprint for c in s.certificates) for s in org.servers.values())


@pytest.mark.parametrize("expired", [False, True], ids=["healthy", "auth_certificate_expired"])
def test_lab_serves_raw_data_only_while_the_auth_certificate_is_expired(expired: bool) -> None:
    """Over the wire: every object has RawData; the properties (Services ...) go with an expired Auth
    certificate, as CSS-Exchange describes; what IIS serves is then still known from HTTP.sys."""
    import dataclasses

    from dagcheck.collect import Collector
    from dagcheck.inventory import load_inventory
    from dagcheck.lab.build import build_organization
    from dagcheck.lab.embedded import lab_connection
    from dagcheck.lab.faults import apply_fault
    from dagcheck.lab.server import LabServer
    from dagcheck.lab.settings import Fault
    from dagcheck.remote.credentials import Credentials
    from dagcheck.remote.psrp import PsrpTransport

    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    org = build_organization(inventory)
    if expired:
        apply_fault(org, Fault("auth_certificate_expired"))
    with LabServer(org) as wire:
        s = inventory.server("mbx1")
        server = dataclasses.replace(
            s, connection=lab_connection(s.connection, wire.exchange_uri("mbx1"), wire.windows_uri("mbx1"))
        )
        transport = PsrpTransport(
            {"mbx1": server}, credentials={"mbx1": Credentials(wire.credentials.username, wire.credentials.password)}
        )
        try:
            snap = Collector(transport).snapshot("mbx1", "health")
            certs, bindings, auth = snap.get("certificates"), snap.get("ssl_bindings"), snap.get("auth_config")[0]
        finally:
            transport.close()
    assert {c.services_known for c in certs} == {not expired}
    assert auth.current_thumbprint in {c.thumbprint for c in certs}
    san = next(c for c in certs if c.subject == "CN=mail.lab.contoso.test")
    assert rules.bound_to(san, bindings, {})[-1] == "IIS Default Web Site (0.0.0.0:443)"
    assert bool(rules.auth_problems(auth, certs, "mbx1", dt.datetime.now(dt.UTC))) is expired


def test_certificate_thresholds_come_from_the_inventory_and_are_checked() -> None:
    from dagcheck.errors import InventoryError
    from dagcheck.inventory import parse_inventory
    from tests.conftest import lab_data

    data = lab_data()
    data["expectations"]["certificates"] = {"warning_days": 45, "critical_days": 10}
    expect = parse_inventory(data, "lab.yml").expectations
    assert (expect.cert_warning_days, expect.cert_critical_days) == (45, 10)
    data["expectations"]["certificates"] = {"warning_days": 5}
    with pytest.raises(InventoryError, match=r"lab.yml: expectations.certificates.critical_days: 7 days must be fewer"):
        parse_inventory(data, "lab.yml")
    data["expectations"]["certificates"] = {"warn_days": 5}
    with pytest.raises(InventoryError, match="warn_days"):
        parse_inventory(data, "lab.yml")
