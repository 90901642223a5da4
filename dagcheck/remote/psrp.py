"""The production transport: pypsrp's WSMan + PSRP client, one runspace pool per server and endpoint.

Commands are built only with add_cmdlet/add_parameter: Exchange's endpoint runs in NoLanguage
mode, and no inventory string ever becomes script text. Output objects are re-read from their
raw CLIXML with psrpcore (see dagcheck.clixml for why).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from pypsrp.exceptions import AuthenticationError, SerializationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.shell import Process, SignalCode, WinRS
from pypsrp.wsman import WSMan

from dagcheck.clixml import from_element_text
from dagcheck.errors import CmdletFailed, ConnectionFailed, Throttled
from dagcheck.inventory import Server
from dagcheck.remote.base import CmdResult, Command, Endpoint, Transcript
from dagcheck.remote.credentials import Credentials, resolve

log = logging.getLogger(__name__)

# ErrorCategory integers (System.Management.Automation.ErrorCategory) for the names in messages.
ERROR_CATEGORIES = {
    0: "NotSpecified", 1: "OpenError", 2: "CloseError", 3: "DeviceError", 4: "DeadlockDetected",
    5: "InvalidArgument", 6: "InvalidData", 7: "InvalidOperation", 8: "InvalidResult", 9: "InvalidType",
    10: "MetadataError", 11: "NotImplemented", 12: "NotInstalled", 13: "ObjectNotFound",
    14: "OperationStopped", 15: "OperationTimeout", 16: "SyntaxError", 17: "ParserError",
    18: "PermissionDenied", 19: "ResourceBusy", 20: "ResourceExists", 21: "ResourceUnavailable",
    22: "ReadError", 23: "WriteError", 24: "FromStdErr", 25: "SecurityError", 26: "ProtocolError",
    27: "ConnectionError", 28: "AuthenticationError", 29: "LimitsExceeded", 30: "QuotaExceeded",
    31: "NotEnabled",
}
# Exchange's throttling errors: the budget/micro-delay exceptions (retry with backoff).
THROTTLING_MARKERS = ("OverBudgetException", "MicroDelay", "throttling", "ServerBusyException")
CONFIGURATION = {Endpoint.EXCHANGE: "Microsoft.Exchange", Endpoint.WINDOWS: "Microsoft.PowerShell"}


@dataclass
class _Pool:
    pool: RunspacePool
    lock: threading.Lock


class PsrpTransport:
    """Lazily opens one RunspacePool per (server, endpoint); reused for the whole run; closed at the end."""

    def __init__(
        self,
        servers: dict[str, Server],
        transcript: Transcript | None = None,
        credentials: dict[str, Credentials] | None = None,
        throttle_retries: int = 3,
        backoff: float = 2.0,
    ) -> None:
        self.servers = {k.lower(): v for k, v in servers.items()}
        self.transcript = transcript or Transcript()
        self._credentials = {k.lower(): v for k, v in (credentials or {}).items()}
        self._pools: dict[tuple[str, Endpoint], _Pool] = {}
        self._connections: dict[tuple[str, Endpoint], WSMan] = {}
        self._cmd_shells: dict[str, tuple[WinRS, threading.Lock]] = {}
        self.unverified_tls: set[str] = set()  # reported at the end of the run, on the terminal and in HTML
        self._lock = threading.Lock()
        self.throttle_retries = throttle_retries
        self.backoff = backoff

    # ---- connections ----------------------------------------------------------------------

    def _server(self, name: str) -> Server:
        try:
            return self.servers[name.lower()]
        except KeyError:
            raise ConnectionFailed(name, "connect", "server is not in the inventory") from None

    def _wsman(self, server: Server, endpoint: Endpoint) -> WSMan:
        """One WSMan connection (HTTP session, auth, TLS) per server and endpoint, shared by its shells."""
        key = (server.name.lower(), endpoint)
        with self._lock:
            if key in self._connections:
                return self._connections[key]
        settings = server.connection
        uri = server.exchange_uri() if endpoint is Endpoint.EXCHANGE else server.windows_uri()
        parts = urlsplit(uri)
        creds = self._credentials.get(server.name.lower()) or resolve(server.name, settings)
        ssl = parts.scheme == "https"
        if ssl and not settings.verify_tls:
            log.warning("TLS certificate verification is DISABLED for %s (%s)", server.name, uri)
            self.unverified_tls.add(server.name)
        wsman = WSMan(
            parts.hostname or server.fqdn,
            port=parts.port or (443 if ssl else 80),
            path=parts.path.lstrip("/") or "wsman",
            ssl=ssl,
            auth=settings.auth,
            username=creds.username,
            password=creds.password,
            certificate_pem=creds.certificate_pem,  # paths of the PEM files (pypsrp reads them)
            certificate_key_pem=creds.certificate_key_pem,
            cert_validation=(settings.ca_bundle or True) if settings.verify_tls else False,
            encryption=settings.encryption,
            operation_timeout=settings.operation_timeout,
            read_timeout=settings.read_timeout,
            connection_timeout=min(30, settings.read_timeout),
            reconnection_retries=0,
        )
        with self._lock:
            return self._connections.setdefault(key, wsman)

    def _open(self, server: Server, endpoint: Endpoint) -> _Pool:
        pool = RunspacePool(self._wsman(server, endpoint), configuration_name=CONFIGURATION[endpoint])
        _install_tolerant_serializer(pool)
        pool.open()
        return _Pool(pool, threading.Lock())

    def _pool(self, server: Server, endpoint: Endpoint) -> _Pool:
        key = (server.name.lower(), endpoint)
        with self._lock:
            existing = self._pools.get(key)
        if existing is not None:
            return existing
        opened = self._open(server, endpoint)
        with self._lock:
            self._pools.setdefault(key, opened)
            return self._pools[key]

    def _discard(self, server: Server, endpoint: Endpoint) -> None:
        with self._lock:
            self._pools.pop((server.name.lower(), endpoint), None)
            self._connections.pop((server.name.lower(), endpoint), None)
            if endpoint is Endpoint.WINDOWS:
                self._cmd_shells.pop(server.name.lower(), None)

    # ---- commands --------------------------------------------------------------------------

    def run(self, server_name: str, endpoint: Endpoint, command: Command) -> list[Any]:
        server = self._server(server_name)
        with self.transcript.record(server.name, endpoint, command) as inv:
            for attempt in range(self.throttle_retries + 1):
                try:
                    result = self._run_once(server, endpoint, command)
                except Throttled:
                    if attempt == self.throttle_retries:
                        raise
                    time.sleep(self.backoff * (2**attempt))
                    continue
                inv.objects = len(result)
                return result
        raise AssertionError("unreachable")

    def _run_once(self, server: Server, endpoint: Endpoint, command: Command) -> list[Any]:
        try:
            entry = self._pool(server, endpoint)
            with entry.lock:
                ps = PowerShell(entry.pool)
                ps.add_cmdlet(command.cmdlet)
                for name, value in command.parameters:
                    ps.add_parameter(name, value)
                if command.member:
                    ps.add_cmdlet("ForEach-Object").add_parameter("MemberName", command.member)
                output = ps.invoke()
        except AuthenticationError as exc:
            self._discard(server, endpoint)
            raise ConnectionFailed(server.name, command.cmdlet, f"authentication failed: {exc}") from None
        except WinRMTransportError as exc:
            self._discard(server, endpoint)
            reason = "access denied (HTTP 401): check the user name and password" if exc.code == 401 else str(exc)
            raise ConnectionFailed(server.name, command.cmdlet, reason) from None
        except WSManFaultError as exc:
            self._discard(server, endpoint)
            raise ConnectionFailed(server.name, command.cmdlet, f"WSMan fault {exc.code}: {exc.reason}") from None
        except (requests.exceptions.RequestException, WinRMError, OSError) as exc:
            self._discard(server, endpoint)
            raise ConnectionFailed(server.name, command.cmdlet, _connection_reason(exc)) from None
        if ps.streams.error:
            raise _cmdlet_error(server.name, command.cmdlet, ps.streams.error[0])
        return [_parse_output(o) for o in output]

    def _cmd_shell(self, server: Server) -> tuple[WinRS, threading.Lock]:
        """One WinRS cmd shell per server, opened on first use and reused (fewer round trips)."""
        key = server.name.lower()
        with self._lock:
            if key in self._cmd_shells:
                return self._cmd_shells[key]
        shell = WinRS(self._wsman(server, Endpoint.WINDOWS))
        shell.open()
        with self._lock:
            return self._cmd_shells.setdefault(key, (shell, threading.Lock()))

    def run_cmd(self, server_name: str, command_line: str) -> CmdResult:
        """Run a Windows command line in a WinRS cmd shell over the server's Windows endpoint."""
        server = self._server(server_name)
        command = Command(command_line)
        with self.transcript.record(server.name, Endpoint.WINRS, command) as inv:
            try:
                shell, lock = self._cmd_shell(server)
                with lock:
                    process = Process(shell, command_line)
                    process.invoke()
                    process.signal(SignalCode.TERMINATE)
            except AuthenticationError as exc:
                self._discard(server, Endpoint.WINDOWS)
                raise ConnectionFailed(server.name, command_line, f"authentication failed: {exc}") from None
            except WSManFaultError as exc:
                self._discard(server, Endpoint.WINDOWS)
                raise ConnectionFailed(server.name, command_line, f"WSMan fault {exc.code}: {exc.reason}") from None
            except (requests.exceptions.RequestException, WinRMError, OSError) as exc:
                self._discard(server, Endpoint.WINDOWS)
                raise ConnectionFailed(server.name, command_line, _connection_reason(exc)) from None
            inv.objects = 1
            return CmdResult(process.rc or 0, process.stdout.decode("utf-8", "replace"),
                             process.stderr.decode("utf-8", "replace"))

    def close(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
            shells = [shell for shell, _ in self._cmd_shells.values()]
            self._pools.clear()
            self._cmd_shells.clear()
            self._connections.clear()
        for shell in shells:
            try:
                shell.close()
            except Exception as exc:  # best effort, as for the pools below
                log.debug("closing a WinRS shell failed: %s", exc)
        for entry in pools:
            try:
                entry.pool.close()
            except Exception as exc:  # closing is best effort: the run's verdicts are already made
                log.debug("closing a runspace pool failed: %s", exc)


class RawClixml:
    """An output object pypsrp 0.9 could not deserialize; psrpcore reads its XML instead."""

    def __init__(self, xml: str) -> None:
        self._xml = xml


class _TolerantSerializer(Serializer):
    """pypsrp 0.9 cannot read generic List`1/MultiValuedProperty contents, and then fails on a later
    <TNRef> to a type first named inside such a list (Get-DatabaseAvailabilityGroup -Status does this:
    ADObjectIds in Servers, then PrimaryActiveManager). Output objects that fail are kept as raw XML."""

    def deserialize(self, element: Any, metadata: Any = None, clear: bool = True) -> Any:
        try:
            return super().deserialize(element, metadata, clear)
        except (KeyError, SerializationError, AttributeError, TypeError, ValueError):
            if not clear or not isinstance(element, str):
                raise
            return RawClixml(element)


def _install_tolerant_serializer(pool: RunspacePool) -> None:
    # Private attributes of pypsrp 0.9 (pinned <1 in pyproject): the pool's serializer and fragmenter.
    serializer = _TolerantSerializer()
    pool._serializer = serializer
    pool._fragmenter.serializer = serializer


def _parse_output(value: Any) -> Any:
    xml = getattr(value, "_xml", None)
    return from_element_text(xml) if xml else value


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text or "Failed to establish" in text:
        return f"connection refused ({text.split(': ', 1)[-1][:160]})"
    if "Read timed out" in text or "timed out" in text:
        return f"timed out: {text[:200]}"
    if "reset" in text.lower() or "aborted" in text.lower() or "RemoteDisconnected" in text:
        return f"connection dropped by the server ({text[:160]})"
    return text[:300]


def _cmdlet_error(server: str, cmdlet: str, record: Any) -> CmdletFailed:
    message = str(record) or getattr(record, "message", "") or "error"
    category = ERROR_CATEGORIES.get(getattr(record, "category", 0) or 0, "NotSpecified")
    error_id = getattr(record, "fq_error", "") or ""
    if any(marker.lower() in (message + error_id).lower() for marker in THROTTLING_MARKERS):
        return Throttled(server, cmdlet, message, category, error_id)
    return CmdletFailed(server, cmdlet, message, category, error_id)
