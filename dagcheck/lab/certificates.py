"""Real X.509 certificates for the simulated servers' stores, so that Get-ExchangeCertificate's RawData is
a certificate a client can parse, and its Thumbprint is that certificate's SHA-1, as on Windows.

What Exchange puts in a server's store (Learn, "Digital certificates and encryption in Exchange Server"):
setup's self-signed certificate (CN=<server>, SANs the server's short name and FQDN, five years, bound to
IIS and SMTP until an administrator assigns another), and the "Microsoft Exchange Server Auth
Certificate" (CN=Microsoft Exchange Server Auth Certificate, five years, the same certificate on every
server of the organisation, used for server-to-server OAuth). The CSS-Exchange E19 capture
(HealthChecker's Tests/DataCollection/E19/Exchange/GetExchangeCertificate.xml) shows both subjects. One
RSA key (made once per process) signs them all, with PKCS #1 v1.5, which is deterministic: the same
certificate request gives the same certificate (and thumbprint) within a process, so two organisations
built from one inventory agree. The lab never uses the keys, only the certificates' fields.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AUTH_SUBJECT = "CN=Microsoft Exchange Server Auth Certificate"
_KEY: list[rsa.RSAPrivateKey] = []
_KEY_LOCK = threading.Lock()


def _key() -> rsa.RSAPrivateKey:
    # One key per process (making one is the slow part): certificates of a 300-server lab are only signed.
    with _KEY_LOCK:
        if not _KEY:
            _KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _KEY[0]


def make(common_name: str, sans: list[str], not_before: dt.datetime, not_after: dt.datetime) -> tuple[str, str]:
    """A self-signed certificate: (thumbprint as Windows shows it, base64 of its DER encoding)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_key().public_key())
        .serial_number(_serial(common_name, sans, not_before, not_after))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    der = builder.sign(_key(), hashes.SHA256(), rsa_padding=padding.PKCS1v15()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der).hexdigest().upper(), base64.b64encode(der).decode("ascii")


def _serial(common_name: str, sans: list[str], not_before: dt.datetime, not_after: dt.datetime) -> int:
    """A serial number derived from what the certificate is (positive, under 160 bits, as RFC 5280 wants)."""
    text = "|".join([common_name, *sans, not_before.isoformat(), not_after.isoformat()])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big") | 1
