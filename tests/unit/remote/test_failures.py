"""The one table from library exceptions to dagcheck's errors (dagcheck.remote.failures): each row, raised
for real, gives its dagcheck error and its wording; and every path that maps them (a runspace command, a
WinRS command line, a logon) maps one exception the same way."""

from __future__ import annotations

import ssl
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, InvalidPSRPOperation, WinRMTransportError, WSManFaultError
from spnego.exceptions import NoCredentialError

from dagcheck.errors import BadResponse, ConnectionFailed, OutcomeUnknown, RemoteError, Throttled
from dagcheck.inventory import load_inventory
from dagcheck.remote import failures
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.failures import Kind
from dagcheck.remote.guard import ResponseRefused
from dagcheck.remote.psrp import PsrpTransport
from tests.conftest import LAB_YML

REFUSED = (
    "HTTPConnectionPool(host='mbx1', port=5985): Max retries exceeded with url: /wsman (Caused by "
    "NewConnectionError(\"HTTPConnection(host='mbx1', port=5985): Failed to establish a new connection: "
    '[Errno 111] Connection refused"))'
)


def _fault(code: Any, reason: str | None) -> WSManFaultError:
    return WSManFaultError(code, "mbx1", reason, None, None, None)


def _parser_error() -> ET.ParseError:
    try:
        ET.fromstring("<Obj><unclosed></Obj>")
    except ET.ParseError as exc:
        return exc
    raise AssertionError("the XML parsed")


def _verify_failed() -> requests.exceptions.SSLError:
    cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    cause.verify_code, cause.verify_message = 18, "self-signed certificate"
    error = requests.exceptions.SSLError("HTTPSConnectionPool(host='mbx1', port=443): Max retries exceeded")
    error.__context__ = cause
    return error


# (exception, auth setting, kind, dagcheck error, the reason it says)
ROWS: list[tuple[BaseException, str, Kind, type[RemoteError], str]] = [
    (
        AuthenticationError("Failed to authenticate the user alice with ntlm"),
        "ntlm",
        Kind.LOGON_REFUSED,
        ConnectionFailed,
        "access denied (HTTP 401): Failed to authenticate the user alice with ntlm",
    ),
    (
        WinRMTransportError("http", 401, ""),
        "ntlm",
        Kind.LOGON_REFUSED,
        ConnectionFailed,
        "access denied (HTTP 401): check the user name and password",
    ),
    (
        NoCredentialError(context_msg="Getting GSSAPI credential"),
        "kerberos",
        Kind.NEGOTIATE,
        ConnectionFailed,
        "Kerberos authentication failed: SpnegoError (7): No credentials were supplied, or the credentials were "
        "unavailable or inaccessible, Context: Getting GSSAPI credential. Get a ticket first (kinit user@REALM), "
        "and check that krb5.conf knows the realm and that the server's SPN HTTP/<fqdn> exists",
    ),
    (
        NoCredentialError(context_msg="Getting NTLM credential"),
        "negotiate",
        Kind.NEGOTIATE,
        ConnectionFailed,
        "negotiate authentication failed: SpnegoError (7): No credentials were supplied, or the credentials were "
        "unavailable or inaccessible, Context: Getting NTLM credential",
    ),
    (
        WinRMTransportError("http", 500, "boom"),
        "ntlm",
        Kind.HTTP_ERROR,
        ConnectionFailed,
        "Bad HTTP response returned from the server. Code: 500, Content: 'boom'",
    ),
    (
        _fault("2150858843", " The request for the Windows Remote Shell with ShellId x failed "),
        "ntlm",
        Kind.SHELL_LOST,
        ConnectionFailed,
        "the server lost the shell (The request for the Windows Remote Shell with ShellId x failed)",
    ),
    (_fault("w:InvalidSelectors", "gone"), "ntlm", Kind.SHELL_LOST, ConnectionFailed, "the server lost the shell (gone)"),
    (
        _fault("2150859173", "The WS-Management service cannot process the request. "),
        "ntlm",
        Kind.THROTTLED,
        Throttled,
        "throttled by the server (WSMan fault 2150859173): The WS-Management service cannot process the request.",
    ),
    (_fault(None, None), "ntlm", Kind.BAD_ANSWER, BadResponse, "the server answered a SOAP fault with no code and no reason"),
    (
        _fault("2150858770", " The client cannot connect "),
        "ntlm",
        Kind.WSMAN_FAULT,
        ConnectionFailed,
        "WSMan fault 2150858770: The client cannot connect",
    ),
    (
        ResponseRefused("the server's answer passed the limit"),
        "ntlm",
        Kind.BAD_ANSWER,
        BadResponse,
        "the server's answer passed the limit",
    ),
    (
        _parser_error(),
        "ntlm",
        Kind.BAD_ANSWER,
        BadResponse,
        "the server's answer could not be read (ParseError: mismatched tag: line 1, column 17)",
    ),
    (
        requests.exceptions.ReadTimeout("HTTPConnectionPool(host='mbx1', port=5985): Read timed out. (read timeout=30)"),
        "ntlm",
        Kind.TIMEOUT,
        ConnectionFailed,
        "timed out: HTTPConnectionPool(host='mbx1', port=5985): Read timed out. (read timeout=30)",
    ),
    (
        requests.exceptions.ConnectionError(REFUSED),
        "ntlm",
        Kind.CONNECTION,
        ConnectionFailed,
        f"connection refused ({REFUSED.split(': ', 1)[1][:160]})",
    ),  # the pool's "HTTPConnectionPool(...): " dropped
    (
        ConnectionResetError(104, "Connection reset by peer"),
        "ntlm",
        Kind.CONNECTION,
        ConnectionFailed,
        "connection dropped by the server ([Errno 104] Connection reset by peer)",
    ),
    (
        _verify_failed(),
        "ntlm",
        Kind.CONNECTION,
        ConnectionFailed,
        "TLS: certificate chain check failed: it is self-signed (self-signed certificate); trust the issuing CA: "
        "export its certificate (Base-64, PEM) and name it in connection.ca_bundle, or add it to this host's store "
        "(update-ca-certificates / update-ca-trust); never verify_tls: false outside a lab",
    ),
    (
        InvalidPSRPOperation("Received a broken RunspacePoolState message: the pool broke"),
        "ntlm",
        Kind.CONNECTION,
        ConnectionFailed,
        "Received a broken RunspacePoolState message: the pool broke",
    ),
]


@pytest.mark.parametrize(
    ("exc", "auth", "kind", "error", "reason"), ROWS, ids=[f"{type(r[0]).__name__}-{r[2].name}-{i}" for i, r in enumerate(ROWS)]
)
def test_each_row_maps_a_raised_exception_to_its_error_and_wording(
    exc: BaseException, auth: str, kind: Kind, error: type[RemoteError], reason: str
) -> None:
    try:
        raise exc
    except BaseException as raised:  # noqa: BLE001 - the row is read from what was really raised
        failure = failures.classify(raised, auth)
    assert failure is not None
    assert (failure.kind, failure.error, failure.reason) == (kind, error, reason)
    made = failure.raised("mbx1", "Get-Queue")
    assert type(made) is error and str(made) == f"mbx1: Get-Queue: {reason}"


def test_every_row_is_exercised() -> None:
    hit = {failures.TABLE.index(next(r for r in failures.TABLE if isinstance(e, r.catches) and r.when(e))) for e, *_ in ROWS}
    assert hit == set(range(len(failures.TABLE)))


def test_a_parse_error_of_ours_is_not_disguised_as_the_servers_bad_answer() -> None:
    try:
        {}["not raised in a parser"]  # noqa: B018 - raised here, in a test, not in pypsrp/psrpcore/xml
    except KeyError as exc:
        assert failures.classify(exc) is None


def test_an_exception_no_row_names_is_none() -> None:
    assert failures.classify(RuntimeError("a bug")) is None
    assert failures.classify(KeyboardInterrupt()) is None


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (
            _verify_failed(),
            "TLS failed (the certificate is not trusted by connection.ca_bundle / the system store?): "
            "HTTPSConnectionPool(host='mbx1', port=443): Max retries exceeded",
        ),
        (requests.exceptions.ConnectTimeout("connect timeout=30"), "timed out: connect timeout=30"),
        (requests.exceptions.ConnectionError(REFUSED), f"connection refused ({REFUSED[:160]})"),
        (
            requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected('closed'))"),
            "connection dropped by the server (('Connection aborted.', RemoteDisconnected('closed')))",
        ),
        (requests.exceptions.ConnectionError("name does not resolve"), "connection failed: name does not resolve"),
    ],
)
def test_the_health_pages_get_words_each_failure(exc: Exception, reason: str) -> None:
    assert failures.https_reason(exc) == reason


# ---- every path of the transport maps an exception the same way ------------------------------------------

PATH_CASES = [r for r in ROWS if r[2] is not Kind.NEGOTIATE or r[1] == "ntlm"]


def _one_server_transport() -> PsrpTransport:
    server = next(s for s in load_inventory(LAB_YML).servers if s.name == "mbx1")
    transport = PsrpTransport(
        {"mbx1": server}, credentials={"mbx1": Credentials("alice", "secret")}, throttle_retries=0, reconnect_delay=0
    )
    return transport


def _raised(call: Any) -> RemoteError:
    try:
        call()
    except RemoteError as exc:
        return exc
    raise AssertionError("nothing raised")


@pytest.mark.parametrize(
    ("exc", "auth", "kind", "error", "reason"),
    PATH_CASES,
    ids=[f"{type(r[0]).__name__}-{r[2].name}-{i}" for i, r in enumerate(PATH_CASES)],
)
def test_a_command_and_a_command_line_map_one_exception_alike(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, auth: str, kind: Kind, error: type[RemoteError], reason: str
) -> None:
    """The runspace path and the WinRS path had each their own copy of the mapping: the same exception, raised
    where each opens its shell, gives the same error and the same reason on both."""

    def fail(*args: Any) -> Any:
        raise exc

    results = []
    for path in ("run", "run_cmd"):
        transport = _one_server_transport()
        monkeypatch.setattr(transport, "_use_pool", fail)
        monkeypatch.setattr(transport, "_cmd_shell", fail)
        if path == "run":
            got = _raised(lambda t=transport: t.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-Queue")))
        else:
            got = _raised(lambda t=transport: t.run_cmd("mbx1", "sc.exe query MSExchangeTransport"))
        results.append((type(got), got.reason))
    assert results[0] == results[1]
    assert results[0][0] is not OutcomeUnknown and reason.split(" (")[0][:20] in results[0][1]


def test_a_logon_refused_while_running_is_worded_as_at_logon(monkeypatch: pytest.MonkeyPatch) -> None:
    """pypsrp's AuthenticationError read 'access denied (HTTP 401): ...' when the shell was opened, but only the
    library's words when a later message was refused: one row, one wording."""
    transport = _one_server_transport()

    def refuse(*args: Any) -> Any:
        raise AuthenticationError("Failed to authenticate the user alice with ntlm")

    monkeypatch.setattr(transport, "_use_pool", refuse)
    got = _raised(lambda: transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-Queue")))
    assert "access denied (HTTP 401): Failed to authenticate the user alice with ntlm" in got.reason
