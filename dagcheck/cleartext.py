"""Which connections would send credentials or messages in clear (issue 24, item 8).

Over http (not https) WSMan is protected only by its own message encryption, which only the Negotiate
family (NTLM, Kerberos, CredSSP) provides: Basic sends the password Base64-encoded in every request and
cannot seal messages (pypsrp refuses encryption "always" with Basic and sends it in clear with "auto"), and
`encryption: never` sends every message, every cmdlet's output included, as plain SOAP. That is refused for
any host but this machine itself unless the inventory accepts it for the server (connection.allow_cleartext),
and then every run says so (console, summary, mail).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

FIELD = "allow_cleartext"


def is_loopback(host: str) -> bool:
    """This machine itself (nothing crosses a network): localhost, 127.0.0.0/8, ::1. A name is not resolved."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cleartext_problem(uri: str, auth: str, encryption: str, connect_address: str | None) -> str | None:
    """What would travel in clear on this endpoint, or None (https, loopback, or sealed messages)."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "http" or is_loopback(connect_address or parts.hostname or ""):
        return None
    if auth == "basic":
        return f"Basic authentication over {uri} sends the password (Base64) and every message in clear"
    if encryption == "never":
        return f"encryption: never over {uri} sends every message (cmdlet output included) in clear"
    return None
