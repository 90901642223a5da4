"""Negotiate (Kerberos or NTLM) authentication and WSMan message encryption, as a WinRM listener on HTTP.

Windows' WinRM service, on HTTP with AllowUnencrypted false (the default), authenticates each
connection with SPNEGO (Authorization: Negotiate <token>, a 401 per round trip, the last token in
the 200's WWW-Authenticate) and then exchanges every SOAP message sealed with that connection's
security context, framed as MS-WSMV 2.2.9.1 describes:

    Content-Type: multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"

    --Encrypted Boundary\r\n
    \tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n
    \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plaintext length>\r\n
    --Encrypted Boundary\r\n
    \tContent-Type: application/octet-stream\r\n
    <uint32 LE: signature length><signature><sealed message>--Encrypted Boundary--\r\n

pyspnego is the acceptor: Kerberos through python-gssapi and MIT krb5 (the keytab named by
KRB5_KTNAME, the service principal HTTP/<fqdn> of the server being reached), NTLM through its own
implementation (the account in the file named by NTLM_USER_FILE). The framing here is written from
the specification, not taken from the client library the product uses, so that the two can disagree.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import shutil
import struct
import tempfile
from dataclasses import dataclass

import spnego
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

log = logging.getLogger(__name__)

BOUNDARY = b"Encrypted Boundary"
SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
KERBEROS_PROTOCOL = "application/HTTP-Kerberos-session-encrypted"  # a client that said "Kerberos", not "Negotiate"
PROTOCOLS = (SPNEGO_PROTOCOL, KERBEROS_PROTOCOL)
NTLMSSP = b"NTLMSSP\x00"


class EncryptionError(Exception):
    """A sealed message that does not parse or does not unseal. Guessed: Windows answers HTTP 400 (empty
    body) and drops the connection; the lab does the same."""


@dataclass
class Step:
    """One Authorization header processed: authenticated, or the 401's token to send back (None: start over)."""

    complete: bool
    token: bytes | None = None


# ---- channel binding (Extended Protection) -----------------------------------------------------------
# IIS checks the channel binding token of Windows authentication against the TLS channel the request came
# on, as the application's extendedProtection tokenChecking says: None (never), Allow (a token that is
# there must match; a client without one is let in), Require (there must be one and it must match). The
# WinRM service does the same by its CbtHardeningLevel, Relaxed by default (Learn, "Installation and
# configuration for Windows Remote Management"), which behaves as Allow. Basic authentication carries no
# token and is not checked.
MSV_AV_EOL, MSV_AV_CHANNEL_BINDINGS = 0x0000, 0x000A


def tls_channel_bindings(certificate_der: bytes) -> GssChannelBindings:
    """RFC 5929 tls-server-end-point for the server certificate: its SHA-256 hash (the lab signs with
    SHA-256; MD5 and SHA-1 signatures would use SHA-256 too), as HTTP clients bind Negotiate to TLS."""
    return GssChannelBindings(application_data=b"tls-server-end-point:" + hashlib.sha256(certificate_der).digest())


def ntlm_channel_binding(authenticate: bytes) -> bytes | None:
    """The MsvAvChannelBindings hash (16 bytes) of an NTLM AUTHENTICATE message's NTLMv2 response, or None
    when it carries none (MS-NLMP 2.2.1.3, 2.2.2.7, 2.2.2.1). Written from the specification."""
    if len(authenticate) < 28 or not authenticate.startswith(NTLMSSP) or authenticate[8:12] != b"\x03\x00\x00\x00":
        return None
    length, _, offset = struct.unpack("<HHI", authenticate[20:28])
    response = authenticate[offset : offset + length]
    pos = 16 + 28  # NTProofStr, then NTLMv2_CLIENT_CHALLENGE's fixed part before its AvPairs
    while pos + 4 <= len(response):
        av_id, av_len = struct.unpack("<HH", response[pos : pos + 4])
        if av_id == MSV_AV_EOL:
            return None
        if av_id == MSV_AV_CHANNEL_BINDINGS:
            return response[pos + 4 : pos + 4 + av_len]
        pos += 4 + av_len
    return None


def channel_binding_allowed(token_checking: str, presented: bytes | None, expected: GssChannelBindings) -> bool:
    """IIS's decision for one NTLM logon: whether the token it carries (None or all zeros: the client bound
    nothing) is acceptable under tokenChecking None, Allow or Require."""
    if token_checking == "None":
        return True
    if presented is None or presented == b"\x00" * 16:
        return token_checking != "Require"
    return presented == hashlib.md5(expected.pack()).digest()  # noqa: S324 - MS-NLMP defines it as MD5


class NegotiateAcceptor:
    """One connection's SPNEGO acceptor. HTTP Negotiate is connection-based: the context made by the 401
    round trips authenticates, and seals, every later request on the same keep-alive connection."""

    def __init__(self, fqdn: str, token_checking: str = "None", bindings: GssChannelBindings | None = None) -> None:
        self.fqdn = fqdn
        # Extended Protection on this endpoint (see channel_binding_allowed) and the TLS channel's bindings.
        self.token_checking = token_checking if bindings is not None else "None"
        self.bindings = bindings
        self.context: spnego.ContextProxy | None = None
        self.principal: str | None = None
        self.final_token: bytes | None = None  # Kerberos' AP-REP: sent in the 200's WWW-Authenticate
        self.scheme = "Negotiate"

    @property
    def complete(self) -> bool:
        return self.context is not None and self.context.complete and self.principal is not None

    def step(self, authorization: str) -> Step:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() not in ("negotiate", "kerberos") or not value.strip():
            return Step(False)
        try:
            token = base64.b64decode(value.strip(), validate=True)
            if self.context is None or self.context.complete or token.startswith(NTLMSSP + b"\x01"):
                self.context, self.principal, self.scheme = self._new_context(token), None, scheme
            out = self.context.step(token)
        except Exception as exc:  # noqa: BLE001 - any token the acceptor cannot take is a refused logon, never a
            # crash of the listener (python-gssapi raises AttributeError, not GSSError, for a ticket to another SPN)
            log.debug("%s: Negotiate authentication failed: %s: %s", self.fqdn, type(exc).__name__, exc)
            self.context = None
            return Step(False)
        if not self.context.complete:
            return Step(False, out)
        if (
            token.startswith(NTLMSSP)
            and self.bindings is not None
            and not channel_binding_allowed(self.token_checking, ntlm_channel_binding(token), self.bindings)
        ):
            log.debug("%s: NTLM logon refused: its channel binding token does not match the TLS channel", self.fqdn)
            self.context = None
            return Step(False)
        self.principal = self.context.client_principal or "authenticated"
        self.final_token = out
        return Step(True)

    def _new_context(self, token: bytes) -> spnego.ContextProxy:
        if token.startswith(NTLMSSP):  # raw NTLM under "Negotiate", as pypsrp and curl send it
            return spnego.server(protocol="ntlm")
        # Kerberos (raw or inside SPNEGO): accept only this server's own service principal from the keytab.
        # With Extended Protection, GSSAPI compares the authenticator's bindings with the channel's (a token
        # that differs is refused; MIT krb5 lets in an authenticator without one, so Require is not enforced
        # for Kerberos here: guessed to be close enough, Windows' own Kerberos acceptor is stricter).
        bindings = self.bindings if self.token_checking != "None" else None
        return spnego.server(
            protocol="negotiate", channel_bindings=bindings, credentials=spnego.CredentialCache(username=f"HTTP@{self.fqdn}")
        )

    def take_reply_header(self) -> str | None:
        """The WWW-Authenticate header for the response that completed authentication (once)."""
        token, self.final_token = self.final_token, None
        return f"{self.scheme} {base64.b64encode(token).decode()}" if token else None


def is_encrypted(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "multipart/encrypted"


def _parameter(content_type: str, name: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None


def unwrap(context: spnego.ContextProxy | None, content_type: str, body: bytes) -> tuple[bytes, str]:
    """The plaintext SOAP message of a multipart/encrypted request, and the protocol it was sealed under."""
    if context is None or not context.complete:
        raise EncryptionError("a sealed message on a connection that has not authenticated")
    protocol = _parameter(content_type, "protocol") or ""
    if protocol not in PROTOCOLS or (_parameter(content_type, "boundary") or "").encode() != BOUNDARY:
        raise EncryptionError(f"unsupported encrypted content type {content_type!r}")
    delimiter = b"--" + BOUNDARY + b"\r\n"
    octet = b"\tContent-Type: application/octet-stream\r\n"
    message, rest = b"", body
    while not rest.startswith(b"--" + BOUNDARY + b"--"):
        if not rest.startswith(delimiter):
            raise EncryptionError("the encrypted message does not start with the boundary")
        head, sep, rest = rest[len(delimiter) :].partition(delimiter)
        if not sep:
            raise EncryptionError("the encrypted message has no octet-stream part")
        length = _original_length(head, protocol)
        if not rest.startswith(octet) or len(rest) < len(octet) + 4:
            raise EncryptionError("the second part is not application/octet-stream")
        rest = rest[len(octet) :]
        signature_length = struct.unpack("<I", rest[:4])[0]
        # The sealed message is as long as the declared plaintext: RC4 and AES-CTS (Kerberos' "wrap IOV"
        # layout Windows uses) and NTLM sealing add no padding after the signature.
        end = 4 + signature_length + length
        if len(rest) < end:
            raise EncryptionError("the sealed message is shorter than its declared Length")
        signature, sealed, rest = rest[4 : 4 + signature_length], rest[4 + signature_length : end], rest[end:]
        try:
            plain = context.unwrap_winrm(signature, sealed)
        except SpnegoError as exc:
            raise EncryptionError(f"the message does not unseal: {exc}") from None
        if len(plain) != length:
            raise EncryptionError(f"unsealed {len(plain)} bytes, the header said {length}")
        message += plain
    return message, protocol


def _original_length(head: bytes, protocol: str) -> int:
    lines = [line.strip() for line in head.decode("ascii", "replace").split("\r\n") if line.strip()]
    if f"Content-Type: {protocol}" not in lines:
        raise EncryptionError("the first part does not name the session encryption protocol")
    for line in lines:
        if line.startswith("OriginalContent:"):
            length = _parameter(line.partition(":")[2].strip(), "length")
            if length is not None and length.isdigit():
                return int(length)
    raise EncryptionError("the first part has no OriginalContent Length")


def wrap(
    context: spnego.ContextProxy,
    data: bytes,
    protocol: str = SPNEGO_PROTOCOL,
    original_type: str = "application/soap+xml;charset=UTF-8",
) -> tuple[str, bytes]:
    """A response sealed with the connection's context: (Content-Type header, body)."""
    sealed = context.wrap_winrm(data)
    body = b"".join(
        [
            b"--" + BOUNDARY + b"\r\n",
            f"\tContent-Type: {protocol}\r\n".encode(),
            f"\tOriginalContent: type={original_type};Length={len(data) + sealed.padding_length}\r\n".encode(),
            b"--" + BOUNDARY + b"\r\n",
            b"\tContent-Type: application/octet-stream\r\n",
            struct.pack("<I", len(sealed.header)),
            sealed.header,
            sealed.data,
            b"--" + BOUNDARY + b"--\r\n",
        ]
    )
    return f'multipart/encrypted;protocol="{protocol}";boundary="{BOUNDARY.decode()}"', body


@dataclass
class LabCredentials:
    username: str
    password: str

    @classmethod
    def generate(cls) -> LabCredentials:
        return cls("lab\\dagcheck", secrets.token_urlsafe(18))

    def __repr__(self) -> str:
        return f"LabCredentials(username={self.username!r}, password='***')"


class NtlmStore:
    """pyspnego's NTLM acceptor reads credentials only from the file named by NTLM_USER_FILE. The lab
    writes its generated throwaway account there (0600, a private temporary directory) for as long as it
    serves NTLM, and removes it at stop. Never used with a real account."""

    def __init__(self, credentials: LabCredentials) -> None:
        domain, _, user = credentials.username.rpartition("\\")
        self.directory = tempfile.mkdtemp(prefix="dagcheck-lab-ntlm-")
        self.path = os.path.join(self.directory, "ntlm_user_file")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{domain}:{user}:{credentials.password}\n")
        self._previous = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = self.path

    def remove(self) -> None:
        if self._previous is None:
            os.environ.pop("NTLM_USER_FILE", None)
        else:
            os.environ["NTLM_USER_FILE"] = self._previous
        shutil.rmtree(self.directory, ignore_errors=True)
