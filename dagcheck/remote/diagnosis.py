"""What a failed connection means, in one line with its fix: shared by `dagcheck doctor` and the main
job's "could not check" reasons, so that both name a TLS trust failure as TLS, not as "unreachable".

OpenSSL's verification result (ssl.SSLCertVerificationError.verify_code, X509_V_ERR_*) says which part of
the certificate failed: the chain (self-signed, unknown issuer), the name, or the validity dates.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

TLS_PREFIX = "TLS:"

# X509_V_ERR_* codes (openssl/x509_vfy.h)
_CHAIN = {
    2: "its issuer's certificate is not available",
    18: "it is self-signed",
    19: "its chain ends in a self-signed certificate that is not trusted",
    20: "its issuer is not trusted (unable to get local issuer certificate)",
    21: "the leaf cannot be verified against a trusted CA",
}
_DATES = {9: "it is not valid yet (check the clocks)", 10: "it has expired"}
_NAME = {62: "it does not name the host connected to", 64: "it does not name the IP address connected to"}
TRUST_ADVICE = (
    "trust the issuing CA: export its certificate (Base-64, PEM) and name it in connection.ca_bundle, or "
    "add it to this host's store (update-ca-certificates / update-ca-trust); never verify_tls: false "
    "outside a lab"
)


@dataclass(frozen=True)
class TlsFailure:
    """A certificate verification failure: which part failed (chain, name, expiry) and the fix."""

    part: str  # "chain", "name", "expiry" or "other"
    detail: str
    advice: str

    @property
    def reason(self) -> str:
        return f"{TLS_PREFIX} certificate {self.part} check failed: {self.detail}; {self.advice}"


def classify(code: int | None, message: str, host: str = "") -> TlsFailure:
    """The part of the certificate that failed, from OpenSSL's verify code (or its message when there is none)."""
    text = message or "certificate verify failed"
    lower = text.lower()
    if code in _NAME or "mismatch" in lower:
        return TlsFailure(
            "name",
            f"{_NAME.get(code or 62, 'the name does not match')} ({text})",
            f"connect by a name the certificate carries (its subject alternative names) in exchange_uri/"
            f"windows_uri{', not ' + host if host else ''}; for another address keep the name in the URI "
            "and set connect_address",
        )
    if code in _DATES or "expired" in lower or "not yet valid" in lower:
        return TlsFailure(
            "expiry",
            f"{_DATES.get(code or 10, 'its validity dates')} ({text})",
            "renew the certificate on the server (Exchange: New-ExchangeCertificate / "
            "Enable-ExchangeCertificate -Services IIS; WinRM: the HTTPS listener's thumbprint)",
        )
    if code in _CHAIN or "self-signed" in lower or "self signed" in lower or "issuer" in lower:
        return TlsFailure("chain", f"{_CHAIN.get(code or 20, 'the chain is not trusted')} ({text})", TRUST_ADVICE)
    return TlsFailure("other", text, TRUST_ADVICE)


def tls_failure(exc: BaseException, host: str = "") -> TlsFailure | None:
    """The certificate verification failure somewhere in an exception's chain (requests wraps urllib3, which
    wraps ssl's), or None when it is not one."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return classify(current.verify_code, current.verify_message or str(current), host)
        stack += [current.__cause__, current.__context__, *(a for a in current.args if isinstance(a, BaseException))]
        stack += [getattr(current, "reason", None) if isinstance(getattr(current, "reason", None), BaseException) else None]
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = text.split("certificate verify failed:", 1)[-1]
        return classify(None, "".join(c for c in detail if c not in "()'\"").strip(), host)
    return None
