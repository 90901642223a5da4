"""Real X.509 certificates for the simulated servers' stores, so that Get-ExchangeCertificate's RawData is
a certificate a client can parse, and its Thumbprint is that certificate's SHA-1, as on Windows.

What Exchange puts in a server's store (Learn, "Digital certificates and encryption in Exchange Server"):
setup's self-signed certificate (CN=<server>, SANs the server's short name and FQDN, five years, bound to
IIS and SMTP until an administrator assigns another), and the "Microsoft Exchange Server Auth
Certificate" (CN=Microsoft Exchange Server Auth Certificate, five years, the same certificate on every
server of the organisation, used for server-to-server OAuth). The CSS-Exchange E19 capture
(HealthChecker's Tests/DataCollection/E19/Exchange/GetExchangeCertificate.xml) shows both subjects. One
EC key signs them all: the lab never uses the keys, only the certificates' fields.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AUTH_SUBJECT = "CN=Microsoft Exchange Server Auth Certificate"
_KEY: list[ec.EllipticCurvePrivateKey] = []
_KEY_LOCK = threading.Lock()


def _key() -> ec.EllipticCurvePrivateKey:
    # One key per process (making one is the slow part): certificates of a 300-server lab are made in a blink.
    with _KEY_LOCK:
        if not _KEY:
            _KEY.append(ec.generate_private_key(ec.SECP256R1()))
        return _KEY[0]


def make(common_name: str, sans: list[str], not_before: dt.datetime, not_after: dt.datetime) -> tuple[str, str]:
    """A self-signed certificate: (thumbprint as Windows shows it, base64 of its DER encoding)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(_key().public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    der = builder.sign(_key(), hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der).hexdigest().upper(), base64.b64encode(der).decode("ascii")
