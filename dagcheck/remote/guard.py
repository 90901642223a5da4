"""The transport's boundary against a hostile or broken endpoint: what a server sends is bounded and vetted
before pypsrp or psrpcore parse it.

Three guards, installed on each pypsrp WSMan connection (install()):
- a size cap enforced while the HTTP body is read (a declared Content-Length over it is refused unread;
  a chunked body is cut as soon as it passes it), so a 1 GiB answer never sits in memory;
- no DTD: WSMan and CLIXML never carry one, and xml.etree expands internal entities (the "billion laughs")
  and reports external ones only as parse errors, so any <!DOCTYPE or <!ENTITY is refused unparsed, in the
  SOAP envelope and in each PSRP message inside it (refuse_dtd, called by dagcheck.clixml and the serializer);
- an HTTP error (other than 401, which pypsrp's auth handles) whose body is not a SOAP fault is reported as its
  status and a short, printable summary of the body, instead of pypsrp's "WSMan fault None: None".
Every refusal raises ResponseRefused; dagcheck.remote.failures maps it (and any parse error) to BadResponse.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from pypsrp.exceptions import WinRMTransportError

DEFAULT_MAX_RESPONSE_MB = 64  # pypsrp asks for 150 KiB envelopes: a real answer is far below this
CHUNK = 64 * 1024
SUMMARY_CHARS = 200
_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<script.*?</script>|<style.*?</style>|<[^>]*>", re.IGNORECASE | re.DOTALL)


class ResponseRefused(Exception):
    """What a server sent was refused at the boundary; reason says what and why, in one bounded line.
    Deliberately not a ValueError: pypsrp's tolerant deserializer must not swallow it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def refuse_dtd(data: bytes | str, where: str = "the server's answer") -> None:
    """Refuse any document type declaration or entity declaration before the XML is parsed."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    if _DTD.search(raw):
        raise ResponseRefused(
            f"{where} declares a DTD or entities (<!DOCTYPE/<!ENTITY); refused unparsed "
            "(entity expansion and external entities are never processed)"
        )


def summarize(body: bytes | str, limit: int = SUMMARY_CHARS) -> str:
    """A short, printable description of a body: its kind and its first words (an HTML page's title)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.strip()
    if not stripped:
        return "an empty body"
    if re.search(r"<html|<!doctype html", stripped[:2048], re.IGNORECASE):
        title = _TITLE.search(stripped[:65536])
        words = html.unescape(_TAGS.sub(" ", (title.group(1) if title else stripped[:65536])))
        kind = "an HTML page"
    elif stripped.startswith("<"):
        words, kind = stripped, "an XML document that is not a WSMan fault"
    else:
        words, kind = stripped, "text"
    words = " ".join("".join(c if c.isprintable() else "?" for c in words).split())
    if len(words) > limit:
        words = words[:limit] + "..."
    return f"{kind}: {words!r}" if words else kind


def _is_soap_fault(text: str) -> bool:
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return False
    return root.tag.endswith("}Envelope") and any(el.tag.endswith("}Fault") for el in root.iter())


def read_bounded(response: Any, cap: int) -> bytes:
    """The whole body of a streamed requests Response, or ResponseRefused as soon as it passes `cap` bytes."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > cap:
        response.close()
        raise ResponseRefused(
            f"the server announced an answer of {int(declared):,} bytes, over the limit of "
            f"{cap:,} (connection.max_response_mb); not read"
        )
    body = bytearray()
    for chunk in response.iter_content(CHUNK):
        if len(body) + len(chunk) > cap:
            response.close()  # the rest is never read; the connection is dropped, not reused
            raise ResponseRefused(
                f"the server's answer passed the limit of {cap:,} bytes (connection.max_response_mb); stopped reading"
            )
        body += chunk
    return bytes(body)


def _bounded_session(build: Callable[[], Any], cap: int) -> Callable[[], Any]:
    def build_bounded() -> Any:
        session = build()
        # pypsrp has just read the environment (HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) for this
        # endpoint's one URL into session.proxies and session.verify. Left on, requests reads it all again on
        # every request (a walk over os.environ per message: a fifth of the client's collection CPU at 40
        # servers); what it would find for the same URL is what the session already holds.
        session.trust_env = False
        send = session.send

        def bounded_send(request: Any, **kwargs: Any) -> Any:
            kwargs["stream"] = True  # auth handshakes still complete inside send; their bodies are tiny
            response = send(request, **kwargs)
            response._content = read_bounded(response, cap)  # requests' own cache: .content/.text read it
            response._content_consumed = True
            return response

        session.send = bounded_send
        return session

    return build_bounded


def _vetted_send(send: Callable[..., bytes]) -> Callable[..., bytes]:
    def vetted(message: bytes, **kwargs: Any) -> bytes:
        try:
            data = send(message, **kwargs)
        except WinRMTransportError as err:  # HTTP status >= 400 other than 401 (decrypted, if it was)
            text = err.response_text or ""
            if not _DTD.search(text.encode("utf-8", "replace")) and _is_soap_fault(text):
                raise  # a WSMan fault (no DTD): pypsrp parses it into WSManFaultError
            raise ResponseRefused(f"HTTP {err.code} from the server, not a WSMan answer: {summarize(text)}") from None
        refuse_dtd(data)
        return data

    return vetted


def install(wsman: Any, max_response_mb: int = DEFAULT_MAX_RESPONSE_MB) -> Any:
    """Put the guards on one pypsrp WSMan (its HTTP transport); returns it. Private attributes of pypsrp 0.9
    (pinned <1): the transport's session builder and its send."""
    transport = wsman.transport
    transport._build_session = _bounded_session(transport._build_session, max_response_mb * 1024 * 1024)
    transport.send = _vetted_send(transport.send)
    return wsman
