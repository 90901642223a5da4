"""One table from the libraries' exceptions (pypsrp, pyspnego, requests/urllib3, socket, ssl, the XML
parsers, the transport's own guard) to dagcheck's errors and their wording, as httpx keeps its exception
mapping in one module.

Every path that meets such an exception reads it here: the runspace commands and the WinRS command lines of
PsrpTransport, its logons and its proof of an account on another server, and the health pages' GETs
(dagcheck.remote.https). What a failure then does to the run (discard the shell, judge a refused logon,
retry on a new shell, mark the server blind) is the transport's; what it is called, and which of
dagcheck's errors it becomes, is decided by the first row that matches.
"""

from __future__ import annotations

import ssl
import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import requests
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from spnego.exceptions import SpnegoError

from dagcheck.errors import BadResponse, ConnectionFailed, RemoteError, Throttled
from dagcheck.remote import diagnosis
from dagcheck.remote.guard import ResponseRefused


class Kind(Enum):
    """What happened, as far as the transport's next step is concerned."""

    LOGON_REFUSED = "logon refused"  # HTTP 401 after the credentials were sent: judged by the two-logon proof
    NEGOTIATE = "negotiate"  # our side of Kerberos/NTLM failed (no ticket, no SPN): nothing reached the server
    HTTP_ERROR = "http error"  # an HTTP error status that is not a WSMan fault
    SHELL_LOST = "shell lost"  # the server no longer has our shell: a read is retried once on a new one
    THROTTLED = "throttled"  # a WinRM/Exchange quota refused before anything ran: back off and retry
    WSMAN_FAULT = "wsman fault"  # any other WSMan fault
    BAD_ANSWER = "bad answer"  # refused at the boundary (dagcheck.remote.guard) or broke the parser
    TIMEOUT = "timeout"  # no HTTP answer in time: the server counts as hung
    CONNECTION = "connection"  # refused, reset, dropped, a TLS failure: a restart if the server answered before


# WSManFault codes (wsmerror.h). The shell is gone: Windows answers 0x8033805B with w:InvalidSelectors.
SHELL_LOST_CODES = frozenset({2150858843})
# Quotas: MaxShellsPerUser / Exchange's runspace concurrency, concurrent operations, the user load quota,
# concurrent users. The server refused before running anything: back off and retry.
QUOTA_CODES = frozenset({2150859173, 2150859174, 2150859175, 2150859179})
# What a malformed answer raises from inside pypsrp, psrpcore or xml.etree (beside ET.ParseError).
PARSE_ERRORS = (ET.ParseError, ValueError, KeyError, IndexError, AttributeError, TypeError, struct.error)
_PARSER_PATHS = ("pypsrp", "psrpcore", "xml", "base64", "encodings", "struct", "dagcheck/clixml")
ACCESS_DENIED = "access denied (HTTP 401)"


@dataclass(frozen=True)
class Failure:
    """One library exception, read: its kind, the dagcheck error it becomes, and the reason that error says."""

    kind: Kind
    error: type[RemoteError]
    reason: str

    def raised(self, server: str, what: str) -> RemoteError:
        """The dagcheck error itself, for `server` and the cmdlet or command line `what`."""
        return self.error(server, what, self.reason)


@dataclass(frozen=True)
class Row:
    """Exceptions of these types (and, when given, for which `when` holds) are this kind, this error, this
    wording. `reason` gets the exception and the connection's auth setting (for Negotiate's advice)."""

    catches: tuple[type[BaseException], ...]
    kind: Kind
    error: type[RemoteError]
    reason: Callable[[BaseException, str], str]
    when: Callable[[BaseException], bool] = lambda exc: True


def _code(exc: BaseException) -> int:
    code = getattr(exc, "code", None)
    return int(str(code)) if str(code or "").isdigit() else 0


def _http_401(exc: BaseException) -> bool:
    return isinstance(exc, WinRMTransportError) and exc.code == 401


def _shell_lost(exc: BaseException) -> bool:
    return _code(exc) in SHELL_LOST_CODES or "InvalidSelectors" in str(getattr(exc, "code", None) or "")


def _fault_reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or "").strip()


def _empty_fault(exc: BaseException) -> bool:
    return getattr(exc, "code", None) is None and not getattr(exc, "reason", None)


def raised_in_parser(exc: BaseException) -> bool:
    """Whether the innermost frame of the traceback is in the WSMan/PSRP/XML decoding code. An exception of
    ours raised elsewhere is a bug, and no row disguises it as the server's bad answer."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename.replace("\\", "/")
    return any(f"/{part}" in filename for part in _PARSER_PATHS)


def negotiate_reason(exc: BaseException, auth: str) -> str:
    """One line: what failed on our side of Negotiate, and what to do about it."""
    detail = " ".join(str(exc).split())[:400]
    if auth == "kerberos":
        return (
            f"Kerberos authentication failed: {detail}. Get a ticket first (kinit user@REALM), and check that "
            "krb5.conf knows the realm and that the server's SPN HTTP/<fqdn> exists"
        )
    return f"{auth} authentication failed: {detail}"


# ---- connection failures: one wording for every path -------------------------------------------------


@dataclass(frozen=True)
class ConnectionRow:
    """A failure to get any HTTP answer, recognised from the exception (its type, or its text: urllib3 wraps
    socket's and ssl's errors into messages)."""

    name: str  # tls, refused, timeout, dropped, other
    when: Callable[[BaseException], bool]
    reason: Callable[[BaseException], str]


def _text(exc: BaseException) -> str:
    return str(exc)


CONNECTION_ROWS: tuple[ConnectionRow, ...] = (
    # A certificate that does not verify is named as TLS, with which part failed and the fix (diagnosis).
    ConnectionRow("tls", lambda e: diagnosis.tls_failure(e) is not None, lambda e: diagnosis.tls_failure(e).reason),  # type: ignore[union-attr]
    ConnectionRow(
        "refused",
        lambda e: "Connection refused" in _text(e) or "Failed to establish" in _text(e),
        lambda e: f"connection refused ({_text(e).split(': ', 1)[-1][:160]})",
    ),
    ConnectionRow(
        "timeout", lambda e: "Read timed out" in _text(e) or "timed out" in _text(e), lambda e: f"timed out: {_text(e)[:200]}"
    ),
    ConnectionRow(
        "dropped",
        lambda e: any(w in _text(e).lower() for w in ("reset", "aborted")) or "RemoteDisconnected" in _text(e),
        lambda e: f"connection dropped by the server ({_text(e)[:160]})",
    ),
    ConnectionRow("other", lambda e: True, lambda e: _text(e)[:300]),
)

ROWS_BY_NAME = {row.name: row for row in CONNECTION_ROWS}


def connection_row(exc: BaseException) -> ConnectionRow:
    """The first connection row that recognises the exception (the last, "other", takes any)."""
    return next(row for row in CONNECTION_ROWS if row.when(exc))


def connection_reason(exc: BaseException) -> str:
    """Why no answer came, in one line: TLS (with its fix), refused, timed out, dropped, or the library's words."""
    return connection_row(exc).reason(exc)


# The health pages' GET (dagcheck.remote.https) words two cases its own way: any TLS failure of a page (its
# certificate is IIS's, not WinRM's) and a failure no row names.
HTTPS_TLS = "TLS failed (the certificate is not trusted by connection.ca_bundle / the system store?)"


def https_reason(exc: BaseException) -> str:
    """Why a health page gave no answer, in one line."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return f"{HTTPS_TLS}: {text[:200]}"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"timed out: {text[:200]}"
    if "refused" in text.lower() or "Failed to establish" in text:
        return f"connection refused ({text[:160]})"
    dropped = ROWS_BY_NAME["dropped"]
    return dropped.reason(exc) if dropped.when(exc) else f"connection failed: {text[:200]}"


# ---- the table --------------------------------------------------------------------------------------

TABLE: tuple[Row, ...] = (
    Row((AuthenticationError,), Kind.LOGON_REFUSED, ConnectionFailed, lambda e, _: f"{ACCESS_DENIED}: {e}"),
    Row(
        (WinRMTransportError,),
        Kind.LOGON_REFUSED,
        ConnectionFailed,
        lambda e, _: f"{ACCESS_DENIED}: check the user name and password",
        when=_http_401,
    ),
    Row((SpnegoError,), Kind.NEGOTIATE, ConnectionFailed, negotiate_reason),
    Row((WinRMTransportError,), Kind.HTTP_ERROR, ConnectionFailed, lambda e, _: str(e)),
    Row(
        (WSManFaultError,),
        Kind.SHELL_LOST,
        ConnectionFailed,
        lambda e, _: f"the server lost the shell ({_fault_reason(e)})",
        when=_shell_lost,
    ),
    Row(
        (WSManFaultError,),
        Kind.THROTTLED,
        Throttled,
        lambda e, _: f"throttled by the server (WSMan fault {_code(e)}): {_fault_reason(e)}",
        when=lambda e: _code(e) in QUOTA_CODES,
    ),
    Row(
        (WSManFaultError,),
        Kind.BAD_ANSWER,
        BadResponse,
        lambda e, _: "the server answered a SOAP fault with no code and no reason",
        when=_empty_fault,
    ),
    Row(
        (WSManFaultError,),
        Kind.WSMAN_FAULT,
        ConnectionFailed,
        lambda e, _: f"WSMan fault {getattr(e, 'code', None)}: {_fault_reason(e)[:300]}",
    ),
    Row((ResponseRefused,), Kind.BAD_ANSWER, BadResponse, lambda e, _: e.reason),  # type: ignore[attr-defined]
    Row(
        PARSE_ERRORS,
        Kind.BAD_ANSWER,
        BadResponse,
        lambda e, _: f"the server's answer could not be read ({type(e).__name__}: {str(e)[:160]})",
        when=lambda e: isinstance(e, ET.ParseError) or raised_in_parser(e),
    ),
    Row((requests.exceptions.Timeout,), Kind.TIMEOUT, ConnectionFailed, lambda e, _: connection_reason(e)),
    Row(
        (requests.exceptions.RequestException, WinRMError, OSError, ssl.SSLError),
        Kind.CONNECTION,
        ConnectionFailed,
        lambda e, _: connection_reason(e),
    ),
)

# The types any row catches: what a transport's `except` names (anything else is not the server's doing).
CAUGHT: tuple[type[BaseException], ...] = tuple(dict.fromkeys(t for row in TABLE for t in row.catches))


def classify(exc: BaseException, auth: str = "") -> Failure | None:
    """The first row that matches the exception, read; None when no row does (a bug of ours, not disguised)."""
    for row in TABLE:
        if isinstance(exc, row.catches) and row.when(exc):
            return Failure(row.kind, row.error, row.reason(exc, auth))
    return None
