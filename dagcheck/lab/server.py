"""The lab's WSMan + PSRP server: each simulated server listens on its own loopback port.

Paths: /PowerShell (configuration Microsoft.Exchange, as on an Exchange server's IIS) and /wsman
(configuration Microsoft.PowerShell, the Windows endpoint). psrpcore's ServerRunspacePool and
ServerPipeline speak PSRP; this module speaks WSMan (Create, Command, Send, Receive, Signal,
Delete, Enumerate) around them and runs the lab's cmdlets. Pipelines run on worker threads so that a
slow cmdlet makes Receive wait, as with a real server: a Receive is held for the request's
OperationTimeout and then answered w:TimedOut, as Windows does.

Shells end as on real servers (dagcheck.lab.shells): IdleTimeOut, an application-pool recycle, a
reboot (the listener closes: connection refused until it is back). Quotas are enforced per user:
Exchange's PowerShellMaxConcurrency on /PowerShell, WinRM's MaxShellsPerUser on /wsman. The fault
shapes are in dagcheck.lab.wirefaults.
"""

from __future__ import annotations

import base64
import http.server
import logging
import os
import random
import secrets
import shutil
import socket
import socketserver
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import spnego
from psrpcore import PSRPPayload, ServerPipeline, ServerRunspacePool, StreamType
from psrpcore._events import CreatePipelineEvent
from psrpcore.types import ErrorCategory, ErrorCategoryInfo, NETException
from spnego.exceptions import SpnegoError

from dagcheck.lab import auth as negotiate
from dagcheck.lab import budget, cmdlets, health_pages, products, winrs
from dagcheck.lab import wirefaults as wf
from dagcheck.lab.cmdlets.base import EXCHANGE, WINDOWS
from dagcheck.lab.errors import LabCmdletError
from dagcheck.lab.settings import Fault, LabLatency
from dagcheck.lab.shells import EXCHANGE_PATH, WSMAN_PATH, AnyShell, CmdShell, Shell, ShellTable
from dagcheck.lab.state import Organization
from dagcheck.lab.tls import LabCertificate
from dagcheck.lab.wirefaults import WSManFault

log = logging.getLogger(__name__)

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "wsen": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

ACTION = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
RESOURCE_EXCHANGE = "http://schemas.microsoft.com/powershell/Microsoft.Exchange"
RESOURCE_WINDOWS = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
RESOURCE_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"  # Enumerate: the open shells
ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/"
CMD = "cmd"
# Per HTTP path, the resource URIs served there and what answers them.
PATHS = {
    EXCHANGE_PATH: {RESOURCE_EXCHANGE: EXCHANGE},
    WSMAN_PATH: {RESOURCE_WINDOWS: WINDOWS, RESOURCE_CMD: CMD},
}
TIMED_OUT = wf.TIMED_OUT
SIGNAL_TERMINATE = ACTION + "signal/terminate"
MAX_TIMEOUT = 60.0  # winrm/config MaxTimeoutms 60000: no Receive is held longer
MAX_IDLE_TIMEOUT = 2147483.647  # rsp:MaxIdleTimeOut of the recorded Create responses
MIN_ENVELOPE = 8192
ENVELOPE_OVERHEAD = 2048  # room for the SOAP headers and the ReceiveResponse around a stream


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


@dataclass
class LabCredentials:
    username: str
    password: str

    @classmethod
    def generate(cls) -> LabCredentials:
        return cls("lab\\dagcheck", secrets.token_urlsafe(18))

    def __repr__(self) -> str:
        return f"LabCredentials(username={self.username!r}, password='***')"


class LabEndpointServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """The HTTP listener of one simulated server."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, lab: LabServer, server_name: str, port: int = 0) -> None:
        self.lab = lab
        self.sim_server = server_name
        self.shells = ShellTable()
        self.connections: set[socket.socket] = set()  # open client connections: a reboot resets them
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def reset_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            _reset(conn)


class LabServer:
    """All endpoints of the simulated organisation; start() binds one port per server."""

    def __init__(self, org: Organization, credentials: LabCredentials | None = None,
                 ports: dict[str, int] | None = None, receive_wait: float = MAX_TIMEOUT, https: bool = False,
                 auth: str = "basic", idle_timeout: float = 7200.0, max_shells_per_user: int = 30,
                 powershell_max_concurrency: int = 18, max_envelope_kb: int = 500,
                 latency: LabLatency | None = None) -> None:
        # negotiate: Kerberos or NTLM, and WSMan message encryption on HTTP (dagcheck.lab.auth).
        if auth not in ("basic", "ntlm", "negotiate"):
            raise ValueError(f"the lab serves basic, ntlm or negotiate auth, not {auth!r}")
        self.org = org
        self.auth = auth
        self._ntlm_store: NtlmStore | None = None
        self.certificate = LabCertificate() if https else None
        self._tls = self.certificate.server_context() if self.certificate else None
        # What a client that binds its Windows authentication to this TLS channel must present (HTTPS only).
        self.channel_bindings = negotiate.tls_channel_bindings(self.certificate.der) if self.certificate else None
        self.credentials = credentials or LabCredentials.generate()
        self.endpoints: dict[str, LabEndpointServer] = {}
        self.threads: list[threading.Thread] = []
        self._ports = dict(ports or {})
        self.receive_wait = receive_wait  # how long a Receive without an OperationTimeout header is held
        # Windows' and Exchange's defaults: IdleTimeOut PT7200S; winrm/config/winrs MaxShellsPerUser 30
        # (Server 2012 and later); the default throttling policy's PowerShellMaxConcurrency 18;
        # winrm/config MaxEnvelopeSizekb 500. Faults (idle_timeout, shell_quota, runspace_quota) lower them.
        self.idle_timeout = idle_timeout
        self.max_shells_per_user = max_shells_per_user
        self.powershell_max_concurrency = powershell_max_concurrency
        self.max_envelope_kb = max_envelope_kb
        self.latency = latency or LabLatency()  # spent on the request's or pipeline's own thread, no lock held
        self._down: set[str] = set()
        # Failed logons per server, as a domain controller's badPwdCount would see them (a request that
        # presented credentials and was refused); tests prove dagcheck stops at one per account.
        self.failed_logons: dict[str, int] = {}
        self._stopped = False
        self._state_lock = threading.Lock()

    def start(self) -> LabServer:
        if self.auth in ("ntlm", "negotiate"):
            self._ntlm_store = NtlmStore(self.credentials)
        for name, server in self.org.servers.items():
            self._listen(name, server.name, self._ports.get(name, 0))
        return self

    def _listen(self, name: str, server_name: str, port: int) -> None:
        endpoint = LabEndpointServer(self, server_name, port)
        if self._tls is not None:
            endpoint.socket = self._tls.wrap_socket(endpoint.socket, server_side=True)
        self._ports[name] = endpoint.server_address[1]
        self.endpoints[name] = endpoint
        # A connection wakes the loop at once; the interval only bounds how long stop() waits (all
        # listeners stop together), and each wake-up costs CPU: ten a second per server were 3000 at 300.
        thread = threading.Thread(target=endpoint.serve_forever, kwargs={"poll_interval": 0.25}, name=f"lab-{name}",
                                  daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self) -> None:
        with self._state_lock:
            self._stopped = True
            endpoints = [e for n, e in self.endpoints.items() if n not in self._down]
        # Every listener at once: shutdown() waits for its serve_forever loop to notice (a poll interval),
        # and one after another that was a quarter of a second per server.
        def close(endpoint: LabEndpointServer) -> None:
            endpoint.shutdown()
            endpoint.server_close()

        if endpoints:
            with ThreadPoolExecutor(max_workers=min(64, len(endpoints)), thread_name_prefix="lab-stop") as pool:
                list(pool.map(close, endpoints))
        if self._ntlm_store is not None:
            self._ntlm_store.remove()

    # ---- the lab's own controls: what happens to a real server's shells -------------------------

    def recycle_app_pool(self, server: str) -> int:
        """MSExchangePowerShellAppPool recycles: every /PowerShell runspace on the server is gone (the
        WinRM service's /wsman shells live in another process and stay). Returns how many went."""
        return self.endpoints[server.lower()].shells.drop(lambda s: s.path != EXCHANGE_PATH)

    def expire_idle_shells(self, server: str | None = None, idle_for: float | None = None) -> int:
        """Expire shells idle for `idle_for` seconds (default: the IdleTimeOut); 0 expires every shell now."""
        names = [server.lower()] if server else list(self.endpoints)
        timeout = self.idle_timeout if idle_for is None else idle_for
        cap = MAX_IDLE_TIMEOUT if idle_for is None else idle_for  # an explicit idle_for applies to every shell
        return sum(self.endpoints[n].shells.expire_idle(timeout, cap) for n in names)

    def reboot(self, server: str, seconds: float) -> None:
        """The server restarts: its connections are reset, its port refuses connections for `seconds`,
        and it comes back with no shells."""
        name = server.lower()
        with self._state_lock:
            if name in self._down or self._stopped:
                return
            self._down.add(name)
            endpoint = self.endpoints[name]
        endpoint.shutdown()
        endpoint.server_close()
        endpoint.reset_connections()
        endpoint.shells.drop()
        timer = threading.Timer(seconds, self._boot, args=(name, endpoint.sim_server))
        timer.daemon = True
        timer.start()

    def _boot(self, name: str, server_name: str, attempt: int = 0) -> None:
        """The server is back: it listens on its own port again. On a shared machine another process's
        socket may hold that port for a moment (an outgoing connection's ephemeral port): try again every
        0.2 s for a minute rather than leave the server down for good."""
        with self._state_lock:
            if self._stopped:
                return
            try:
                self._listen(name, server_name, self._ports[name])
            except OSError as exc:
                if attempt >= 300:
                    log.error("%s could not listen on port %s again: %s", name, self._ports[name], exc)
                    return
                timer = threading.Timer(0.2, self._boot, args=(name, server_name, attempt + 1))
                timer.daemon = True
                timer.start()
                return
            self._down.discard(name)

    def is_down(self, server: str) -> bool:
        return server.lower() in self._down

    def open_shells(self, server: str | None = None, owner: str | None = None) -> list[AnyShell]:
        """The shells the servers hold (every server, or one), optionally only one user's."""
        names = [server.lower()] if server else list(self.endpoints)
        return [s for n in names for s in self.endpoints[n].shells.list(owner=owner)]

    def idle_timeout_for(self, server: str) -> float:
        """The server's IdleTimeOut for shells whose client did not ask for one (an idle_timeout fault lowers it)."""
        faults = self.org.faults_matching("idle_timeout", server)
        return min([float(f.get("seconds", 60)) for f in faults] + [self.idle_timeout])

    def max_idle_timeout_for(self, server: str) -> float:
        """The longest IdleTimeOut a client may ask for: WinRM's MaxIdleTimeoutms (PT2147483.647S as the
        recorded Create responses show), lowered by an idle_timeout fault like the default."""
        faults = self.org.faults_matching("idle_timeout", server)
        return min([float(f.get("seconds", 60)) for f in faults] + [MAX_IDLE_TIMEOUT])

    def shell_idle_timeout(self, shell: AnyShell) -> float:
        """The IdleTimeOut one shell lives by: the client's own (within the maximum), else the server's."""
        if shell.idle_timeout is None:
            return self.idle_timeout_for(shell.server_name)
        return min(shell.idle_timeout, self.max_idle_timeout_for(shell.server_name))

    def shell_limit(self, server: str, path: str) -> int:
        kind, default = (("runspace_quota", self.powershell_max_concurrency) if path == EXCHANGE_PATH
                         else ("shell_quota", self.max_shells_per_user))
        return min([int(f.get("count", 1)) for f in self.org.faults_matching(kind, server)] + [default])

    def latency_for(self, kind: str, cmdlet: str = "") -> float:
        """Seconds a real server would spend: kind is runspace_open, cmdlet (Test-* cmdlets cost
        test_cmdlet) or winrs; plus up to `jitter` at random."""
        lat = self.latency
        if kind == "cmdlet" and cmdlet.lower().startswith("test-"):
            kind = "test_cmdlet"
        base = float(getattr(lat, kind))
        return base + random.uniform(0, lat.jitter) if base > 0 else 0.0

    def fault_fires(self, kind: str, server: str, cmdlet: str | None = None) -> Fault | None:
        """A one-shot runtime fault that fires at its `count`-th request (default the first), then never."""
        with self.org.lock:
            for f in self.org.faults_matching(kind, server, cmdlet):
                hits = self.org.fault_hits.get(id(f), 0) + 1
                self.org.fault_hits[id(f)] = hits
                if hits == int(f.get("count", 1) or 1):
                    return f
        return None

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def port(self, server: str) -> int:
        return self._ports[server.lower()]

    def exchange_uri(self, server: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port(server)}/PowerShell"

    def windows_uri(self, server: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port(server)}/wsman"

    @property
    def scheme(self) -> str:
        return "https" if self.certificate else "http"

    def dropped(self, server: str) -> bool:
        return bool(self.org.faults_matching("dropped_connection", server))


class _Handler(http.server.BaseHTTPRequestHandler):
    server: LabEndpointServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.server.sim_server, format % args)

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    # ---- HTTP ---------------------------------------------------------------------------------

    def send_response(self, code: int, message: str | None = None) -> None:
        self._responded = True
        super().send_response(code, message)

    def do_POST(self) -> None:
        """Every request gets an answer, as from Windows: a request the lab cannot make sense of is a SOAP
        fault (HTTP 500), never a dropped connection, and the connection stays usable."""
        self._responded = False
        try:
            self._post()
        except Exception as exc:  # noqa: BLE001 - anything the request handling did not foresee
            log.debug("%s: request failed", self.server.sim_server, exc_info=True)
            if self._responded:
                self.close_connection = True  # half an answer is on the wire: the connection cannot go on
                return
            fault = wf.plugin_error(_PATH_PLUGINS.get(self.path.split("?", 1)[0].rstrip("/").lower(),
                                                      wf.WINDOWS_POWERSHELL_PLUGIN), f"{type(exc).__name__}: {exc}")
            self._fault(None, fault)

    def _post(self) -> None:
        lab = self.server.lab
        self._sealed = None  # the protocol this request was sealed under: its response is sealed too
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if lab.dropped(self.server.sim_server):
            # A dropped connection: no response at all, the socket is reset.
            self.close_connection = True
            _reset(self.connection)
            return
        path = self.path.split("?", 1)[0].rstrip("/").lower()
        if path not in PATHS:
            self._send(404, b"", "text/plain")
            return
        if self.server.lab.auth == "negotiate":
            if not self._negotiate_authorized():
                return
        elif self.server.lab.auth == "ntlm":
            if not self._ntlm_authorized():
                return
        elif not self._authorized():
            if self.headers.get("Authorization"):
                with lab._state_lock:
                    name = self.server.sim_server
                    lab.failed_logons[name] = lab.failed_logons.get(name, 0) + 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="WSMan"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if len(body) > lab.max_envelope_kb * 1024:
            # MaxEnvelopeSizekb also bounds what a client may send (MS-WSMV 2.2.4.10): the WinRM service
            # answers HTTP 413 (as pypsrp/Ansible users report), which the Windows client shows as "the
            # request size exceeded the configured MaxEnvelopeSize quota" (an empty 413 body is guessed).
            self._send(413, b"", "text/plain")
            return
        if not body:
            # The client's empty POST that only sets up the security context before it seals messages
            # (pypsrp does this, as the Windows client's first authenticated request carries no SOAP).
            # Guessed: Windows answers it 200 with an empty body.
            self._send(200, b"", "application/soap+xml;charset=UTF-8")
            return
        if negotiate.is_encrypted(self.headers.get("Content-Type", "")):
            try:
                body, self._sealed = negotiate.unwrap(self._security_context(), self.headers["Content-Type"], body)
            except negotiate.EncryptionError as exc:
                log.debug("%s: %s", self.server.sim_server, exc)
                self.close_connection = True
                self._send(400, b"", "text/plain")
                return
        elif lab.auth == "negotiate" and lab.certificate is None:
            # AllowUnencrypted false (the Windows default): plaintext SOAP on HTTP is refused. Guessed: an
            # empty HTTP 400 (the exact status Windows uses here is not in the recordings we have).
            self.close_connection = True
            self._send(400, b"", "text/plain")
            return
        try:
            envelope = ET.fromstring(body)
        except ET.ParseError:
            self._fault(None, WSManFault(2150858817, "w:SchemaValidationError", "The SOAP XML in the message does not match the corresponding XML schema definition.", 400))
            return
        message_id = _text(envelope, "s:Header/wsa:MessageID") or ""
        action = _text(envelope, "s:Header/wsa:Action") or ""
        server = self.server.sim_server
        if (hostile := _hostile(lab, server, action)) is not None:
            self._send_hostile(hostile)
            return
        if action == ACTION + "Command" and (f := lab.fault_fires("reboot", server)) is not None:
            # The server goes down under this request: no answer, then connection refused for a while.
            self.close_connection = True
            threading.Thread(target=lab.reboot, args=(server, float(f.get("seconds", 3))), daemon=True).start()
            _reset(self.connection)
            return
        self.server.shells.expire_idle(lab.idle_timeout_for(server), lab.max_idle_timeout_for(server))
        try:
            response = self._dispatch(envelope, path)
        except WSManFault as fault:
            self._fault(message_id, fault)
            return
        except Exception as exc:  # noqa: BLE001 - a request the lab cannot process is answered, never dropped
            log.debug("%s: %s could not be processed", server, action, exc_info=True)
            self._fault(message_id, wf.plugin_error(_plugin(envelope, path), f"{type(exc).__name__}: {exc}"))
            return
        action, body_els = response
        self._send(200, _envelope(action, message_id, body_els), "application/soap+xml;charset=UTF-8")

    def do_GET(self) -> None:
        """The protocols' health pages (dagcheck.lab.health_pages): anonymous, as on a real front end."""
        lab = self.server.lab
        if lab.dropped(self.server.sim_server):
            self.close_connection = True
            _reset(self.connection)
            return
        page = health_pages.answer(lab.org, self.server.sim_server, self.path)
        if page is None:
            self._send(404, b"", "text/plain")
            return
        self._send(*page)

    def _owner(self) -> str:
        """The authenticated user, whose shells the quotas count."""
        acceptor: negotiate.NegotiateAcceptor | None = getattr(self, "_negotiate", None)
        return ((acceptor.principal if acceptor else None) or getattr(self, "_ntlm_user", None)
                or getattr(self, "_basic_user", None) or self.server.lab.credentials.username)

    def _negotiate_authorized(self) -> bool:
        """Kerberos or NTLM under Negotiate (dagcheck.lab.auth); sends the 401s itself."""
        acceptor: negotiate.NegotiateAcceptor | None = getattr(self, "_negotiate", None)
        rejected = bool(self.server.lab.org.faults_matching("auth_rejected", self.server.sim_server))
        if acceptor is not None and acceptor.complete and not rejected:
            return True
        if acceptor is None:
            fqdn = self.server.lab.org.servers[self.server.sim_server.lower()].fqdn
            acceptor = self._negotiate = negotiate.NegotiateAcceptor(fqdn, self._token_checking(),
                                                                     self.server.lab.channel_bindings)
        step = acceptor.step(self.headers.get("Authorization", ""))
        if not step.complete or rejected:
            self._challenge(None if rejected else step.token)
            return False
        return True

    def _security_context(self) -> Any:
        """The connection's authenticated security context, which seals its messages."""
        acceptor: negotiate.NegotiateAcceptor | None = getattr(self, "_negotiate", None)
        return acceptor.context if acceptor is not None else getattr(self, "_ntlm", None)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        creds = self.server.lab.credentials
        if self.server.lab.org.faults_matching("auth_rejected", self.server.sim_server):
            return False  # the account is locked out or lacks rights on this server
        ok = secrets.compare_digest(user, creds.username) and secrets.compare_digest(password, creds.password)
        self._basic_user = user if ok else None
        return ok

    def _ntlm_authorized(self) -> bool:
        """NTLM over HTTP is connection-based: a 401 round trip per connection, then it stays authenticated
        (this handler object lives as long as its keep-alive connection). Sends the 401s itself."""
        if getattr(self, "_ntlm_user", None) and not self.server.lab.org.faults_matching("auth_rejected", self.server.sim_server):
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("negotiate", "ntlm") or not token:
            self._challenge(None)
            return False
        try:
            data = base64.b64decode(token)
            if data[8:12] == b"\x01\x00\x00\x00" or getattr(self, "_ntlm", None) is None:  # a NEGOTIATE starts over
                self._ntlm = spnego.server(protocol="ntlm")
            out = self._ntlm.step(data)
        except (SpnegoError, ValueError) as exc:
            log.debug("NTLM authentication failed: %s", exc)
            self._ntlm = None
            self._challenge(None)
            return False
        if not self._ntlm.complete:
            self._challenge(out)
            return False
        if self.server.lab.org.faults_matching("auth_rejected", self.server.sim_server):
            lab = self.server.lab
            with lab._state_lock:
                lab.failed_logons[self.server.sim_server] = lab.failed_logons.get(self.server.sim_server, 0) + 1
            self._challenge(None)
            return False
        bindings = self.server.lab.channel_bindings
        if bindings is not None and not negotiate.channel_binding_allowed(
                self._token_checking(), negotiate.ntlm_channel_binding(data), bindings):
            # IIS refuses the logon (the password was right: no failed logon at the domain controller).
            log.debug("%s: NTLM logon refused by Extended Protection", self.server.sim_server)
            self._ntlm = None
            self._challenge(None)
            return False
        self._ntlm_user = self._ntlm.client_principal or "authenticated"
        return True

    def _token_checking(self) -> str:
        """Extended Protection on the endpoint this request reached: on /PowerShell the tokenChecking of the
        front end's PowerShell application in the server's IIS (the lab's own state, which a fault or a patch
        changes); on /wsman the WinRM service's CbtHardeningLevel, Relaxed by default (Allow)."""
        path = self.path.split("?", 1)[0].rstrip("/").lower()
        if path != EXCHANGE_PATH:
            return "Allow"
        server = self.server.lab.org.servers.get(self.server.sim_server.lower())
        app = server.iis.get((products.FRONT_END, "PowerShell")) if server is not None else None
        return app.token_checking if app is not None else "None"

    def _challenge(self, token: bytes | None) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", "Negotiate" + (f" {base64.b64encode(token).decode()}" if token else ""))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        if getattr(self, "_sealed", None) and data:
            content_type, data = negotiate.wrap(self._security_context(), data, self._sealed)
        self.send_response(status)
        acceptor: negotiate.NegotiateAcceptor | None = getattr(self, "_negotiate", None)
        if acceptor is not None and (reply := acceptor.take_reply_header()):
            self.send_header("WWW-Authenticate", reply)  # Kerberos' mutual authentication: the AP-REP
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_hostile(self, answer: wf.HostileAnswer) -> None:
        """A hostile_response fault's answer; a huge body is generated as it is written, and a client that
        stops reading ends it."""
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        length = answer.size if answer.chunks is None else sum(map(len, answer.chunks))
        if answer.declared:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            if answer.chunks is not None:
                for chunk in answer.chunks:
                    self.wfile.write(chunk)
                return
            pad = wf.SOAP_OPEN + b"<s:Header>" + b"<x>" * ((1 << 20) // 3)
            sent = 0
            while sent < length:
                piece = pad[: length - sent]
                self.wfile.write(piece)
                sent += len(piece)
        except OSError:  # the client stopped reading (its size cap) and closed
            self.close_connection = True

    def _fault(self, message_id: str | None, fault: WSManFault) -> None:
        body = ET.Element(f"{{{NS['s']}}}Fault")
        code = ET.SubElement(body, f"{{{NS['s']}}}Code")
        sender = fault.sender or fault.status != 500
        ET.SubElement(code, f"{{{NS['s']}}}Value").text = "s:Sender" if sender else "s:Receiver"
        sub = ET.SubElement(code, f"{{{NS['s']}}}Subcode")
        ET.SubElement(sub, f"{{{NS['s']}}}Value").text = fault.subcode
        reason = ET.SubElement(body, f"{{{NS['s']}}}Reason")
        ET.SubElement(reason, f"{{{NS['s']}}}Text", {"xml:lang": "en-US"}).text = (
            fault.message if fault.reason is None else fault.reason)
        detail = ET.SubElement(body, f"{{{NS['s']}}}Detail")
        if fault.detail:
            ET.SubElement(detail, f"{{{NS['wsman']}}}FaultDetail").text = fault.detail
        wsf = ET.SubElement(detail, f"{{{NS['wsmanfault']}}}WSManFault",
                            {"Code": str(fault.code), "Machine": self.server.sim_server})
        message = ET.SubElement(wsf, f"{{{NS['wsmanfault']}}}Message")
        if fault.provider is None:
            message.text = fault.message
        else:  # Windows wraps a plug-in's message in f:ProviderFault naming the plug-in and its DLL
            provider, dll = fault.provider
            ET.SubElement(message, f"{{{NS['wsmanfault']}}}ProviderFault",
                          {"provider": provider, "path": dll}).text = fault.message
        data = _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", message_id or "", [body])
        self._send(fault.status, data, "application/soap+xml;charset=UTF-8")

    # ---- WSMan actions ------------------------------------------------------------------------

    def _dispatch(self, envelope: ET.Element, path: str) -> tuple[str, list[ET.Element]]:
        action = _text(envelope, "s:Header/wsa:Action") or ""
        resource = _text(envelope, "s:Header/wsman:ResourceURI") or ""
        body = envelope.find("s:Body", NS)
        max_envelope = int(_text(envelope, "s:Header/wsman:MaxEnvelopeSize") or 153600)
        if max_envelope < MIN_ENVELOPE:
            raise wf.envelope_too_small(max_envelope)
        if resource.lower() == RESOURCE_SHELL.lower() and action in (ENUMERATION + "Enumerate", ENUMERATION + "Pull"):
            return self._enumerate_shells(envelope, path, action)
        endpoint = next((e for r, e in PATHS[path].items() if r.lower() == resource.lower()), None)
        if endpoint is None:
            raise WSManFault(2150858811, "w:InvalidResourceURI",
                             f"The WS-Management service cannot process the request. The resource URI ({resource}) "
                             "was not found in the WS-Management catalog.")
        if action == TRANSFER + "Create":
            if endpoint == CMD:
                return self._create_cmd(body, resource, path)
            return self._create(body, endpoint, resource, path, max_envelope)
        if action == ACTION + "Command" and path == EXCHANGE_PATH and \
                self.server.lab.fault_fires("app_pool_recycle", self.server.sim_server) is not None:
            self.server.lab.recycle_app_pool(self.server.sim_server)  # before this request finds its shell
        shell_id = _selector(envelope, "ShellId")
        shell = self.server.shells.get(shell_id)
        if shell is None or shell.path != path:
            raise wf.shell_not_found(shell_id)
        if action == TRANSFER + "Delete":
            self.server.shells.remove(shell.shell_id)
            if isinstance(shell, Shell):  # closing the runspace pool stops what still runs in it
                with shell.cond:
                    shell.stopped.update(shell.pool.pipeline_table)
                    shell.cond.notify_all()
            return TRANSFER + "DeleteResponse", []
        if isinstance(shell, CmdShell) and action in (ACTION + "Command", ACTION + "Receive", ACTION + "Signal", ACTION + "Send"):
            return self._cmd_action(shell, action, body, _duration(_text(envelope, "s:Header/wsman:OperationTimeout")),
                                    skip_cmd_shell=_option(envelope, "WINRS_SKIP_CMD_SHELL"))
        if isinstance(shell, CmdShell):
            raise WSManFault(2150858770, "wsa:ActionNotSupported", f"The action {action} is not supported by the service.")
        if action == ACTION + "Command":
            return self._command(shell, body)
        if action == ACTION + "Send":
            return self._send_input(shell, body)
        if action == ACTION + "Receive":
            timeout = _duration(_text(envelope, "s:Header/wsman:OperationTimeout"))
            return self._receive(shell, body, timeout, max_envelope)
        if action == ACTION + "Signal":
            return self._signal(shell, body)
        raise WSManFault(2150858770, "wsa:ActionNotSupported", f"The action {action} is not supported by the service.")

    def _create(self, body: ET.Element | None, endpoint: str, resource: str, path: str,
                max_envelope: int) -> tuple[str, list[ET.Element]]:
        shell_el = body.find("rsp:Shell", NS) if body is not None else None
        creation = shell_el.find("pwsh:creationXml", NS) if shell_el is not None else None
        if shell_el is None or creation is None or not creation.text:
            raise WSManFault(2150858817, "w:SchemaValidationError", "A PowerShell shell needs creationXml.")
        shell_id = (shell_el.get("ShellId") or str(uuid.uuid4())).upper()
        lab, server = self.server.lab, self.server.sim_server
        # Exchange's runspace budget (lab.budget): the shell is created, its pool opens Broken.
        left = budget.seconds_left(lab.org.faults_matching(budget.KIND, server)) if path == EXCHANGE_PATH else None
        pool = ServerRunspacePool() if left is None else budget.RefusingPool(left)
        shell = Shell(shell_id, endpoint, server, pool, owner=self._owner(), path=path, resource=resource,
                      max_fragment=_payload_budget(max_envelope), idle_timeout=_idle_timeout(shell_el))
        refuse = wf.powershell_max_concurrency if path == EXCHANGE_PATH else wf.max_shells_per_user
        self.server.shells.add(shell, lab.shell_limit(server, path), refuse)
        with shell.cond:
            pool.receive_data(PSRPPayload(base64.b64decode(creation.text), StreamType.default, None))
            _drain_events(pool)
            shell.flush()
        # Opening a runspace (loading the Exchange snap-in, RBAC) is the slow part of a real connection.
        if (spend := lab.latency_for("runspace_open")) > 0:
            time.sleep(spend)
        return TRANSFER + "CreateResponse", self._resource_created(shell, "stdin pr", "stdout")

    def _create_cmd(self, body: ET.Element | None, resource: str, path: str) -> tuple[str, list[ET.Element]]:
        """A WinRS cmd shell (what pypsrp's WinRS and testinfra-style command runners open)."""
        if body is None or body.find("rsp:Shell", NS) is None:
            raise WSManFault(2150858817, "w:SchemaValidationError", "Create needs a Shell element.")
        shell = CmdShell(str(uuid.uuid4()).upper(), self.server.sim_server, owner=self._owner(), path=path,
                         resource=resource, idle_timeout=_idle_timeout(body.find("rsp:Shell", NS)))
        lab = self.server.lab
        self.server.shells.add(shell, lab.shell_limit(shell.server_name, path), wf.max_shells_per_user)
        return TRANSFER + "CreateResponse", self._resource_created(shell, "stdin", "stdout stderr")

    def _resource_created(self, shell: AnyShell, inputs: str, outputs: str) -> list[ET.Element]:
        """As recorded from Windows: x:ResourceCreated (the EPR), then rsp:Shell beside it in the Body."""
        resp = ET.Element(f"{{{NS['wst']}}}ResourceCreated")
        ET.SubElement(resp, f"{{{NS['wsa']}}}Address").text = f"http://127.0.0.1{self.path}"
        ref = ET.SubElement(resp, f"{{{NS['wsa']}}}ReferenceParameters")
        ET.SubElement(ref, f"{{{NS['wsman']}}}ResourceURI").text = shell.resource
        selectors = ET.SubElement(ref, f"{{{NS['wsman']}}}SelectorSet")
        ET.SubElement(selectors, f"{{{NS['wsman']}}}Selector", {"Name": "ShellId"}).text = shell.shell_id
        return [resp, self._shell_element(shell, inputs, outputs)]

    def _shell_element(self, shell: AnyShell, inputs: str, outputs: str) -> ET.Element:
        """rsp:Shell with the fields, in the order, of the recorded Windows responses: a PowerShell shell
        (test_psrp_open_runspace.yml) has more than a cmd shell (test_winrs_standard.yml)."""
        info = ET.Element(f"{{{NS['rsp']}}}Shell")
        idle = f"PT{self.server.lab.shell_idle_timeout(shell):.3f}S"
        fields = [("ShellId", shell.shell_id), ("ResourceUri", shell.resource), ("Owner", shell.owner),
                  ("ClientIP", "127.0.0.1")]
        if isinstance(shell, Shell):
            fields += [("ProcessId", str(os.getpid())), ("IdleTimeOut", idle), ("InputStreams", inputs),
                       ("OutputStreams", outputs), ("MaxIdleTimeOut", "PT2147483.647S"), ("Locale", "en-US"),
                       ("DataLocale", "en-US"), ("CompressionMode", "NoCompression"), ("ProfileLoaded", "Yes"),
                       ("Encoding", "UTF8"), ("BufferMode", "Block"), ("State", "Connected")]
        else:
            fields += [("IdleTimeOut", idle), ("InputStreams", inputs), ("OutputStreams", outputs)]
        fields += [("ShellRunTime", _xs_duration(time.time() - shell.created)),
                   ("ShellInactivity", _xs_duration(time.monotonic() - shell.last_used))]
        for tag, value in fields:
            ET.SubElement(info, f"{{{NS['rsp']}}}{tag}").text = value
        return info

    def _enumerate_shells(self, envelope: ET.Element, path: str, action: str) -> tuple[str, list[ET.Element]]:
        """Get-WSManInstance -ResourceURI shell -Enumerate (or winrm enumerate): the open shells on this
        endpoint, owner and idle time included, so anyone can see what a client left open. With
        wsman:OptimizeEnumeration the items come in the EnumerateResponse, as Windows does; a Pull on
        the context gives them otherwise. The lab lists every user's shells (guessed: Windows shows a
        non-administrator only their own)."""
        shells = [self._shell_element(s, *(("stdin", "stdout stderr") if isinstance(s, CmdShell) else ("stdin pr", "stdout")))
                  for s in self.server.shells.list(path=path)]
        if action == ENUMERATION + "Pull":  # WS-Enumeration's own Items and EndOfSequence
            resp = ET.Element(f"{{{NS['wsen']}}}PullResponse")
            ET.SubElement(resp, f"{{{NS['wsen']}}}Items").extend(shells)
            ET.SubElement(resp, f"{{{NS['wsen']}}}EndOfSequence")
            return ENUMERATION + "PullResponse", [resp]
        resp = ET.Element(f"{{{NS['wsen']}}}EnumerateResponse")
        ET.SubElement(resp, f"{{{NS['wsen']}}}EnumerationContext").text = f"uuid:{uuid.uuid4()}"
        if envelope.find("s:Body/wsen:Enumerate/wsman:OptimizeEnumeration", NS) is not None:  # DSP0226 8.2.3
            ET.SubElement(resp, f"{{{NS['wsman']}}}Items").extend(shells)
            ET.SubElement(resp, f"{{{NS['wsman']}}}EndOfSequence")
        return ENUMERATION + "EnumerateResponse", [resp]

    def _cmd_action(self, shell: CmdShell, action: str, body: ET.Element | None,
                    timeout: float = 0.0, skip_cmd_shell: bool = False) -> tuple[str, list[ET.Element]]:
        if action == ACTION + "Send":  # the lab's commands read no input
            return ACTION + "SendResponse", [ET.Element(f"{{{NS['rsp']}}}SendResponse")]
        if action == ACTION + "Command":
            line = body.find("rsp:CommandLine", NS) if body is not None else None
            if line is None:
                raise WSManFault(2150858817, "w:SchemaValidationError", "Command needs a CommandLine.")
            command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
            words = [_text(line, "rsp:Command") or ""] + [a.text or "" for a in line.findall("rsp:Arguments", NS)]
            if (spend := self.server.lab.latency_for("winrs")) > 0:
                time.sleep(spend)  # this request's own thread; other requests go on
            command_line = " ".join(w for w in words if w)
            if skip_cmd_shell and not winrs.exists(words[0]):
                # No cmd.exe to say "is not recognized": CreateProcess itself fails, and WinRS answers a fault.
                raise wf.program_not_found()
            shell.results[command_id] = winrs.run(self.server.lab.org, shell.server_name, command_line)
            # slow_cmdlet naming the program (cmdlet: sc): its result shows only after `seconds` (a hung sc.exe)
            delay = cmdlets.slow_seconds(self.server.lab.org, shell.server_name, winrs.program(command_line))
            if delay:
                shell.ready_at[command_id] = time.monotonic() + delay
            resp = ET.Element(f"{{{NS['rsp']}}}CommandResponse")
            ET.SubElement(resp, f"{{{NS['rsp']}}}CommandId").text = command_id
            return ACTION + "CommandResponse", [resp]
        if action == ACTION + "Signal":
            signal = body.find("rsp:Signal", NS) if body is not None else None
            command_id = (signal.get("CommandId") or "").upper() if signal is not None else ""
            if command_id and command_id not in shell.results:
                raise wf.command_not_found()
            shell.results.pop(command_id, None)
            shell.ready_at.pop(command_id, None)
            return ACTION + "SignalResponse", [ET.Element(f"{{{NS['rsp']}}}SignalResponse")]
        desired = body.find("rsp:Receive/rsp:DesiredStream", NS) if body is not None else None
        command_id = (desired.get("CommandId") or "").upper() if desired is not None else ""
        if not command_id:
            raise wf.invalid_parameter()  # as Windows answers a cmd shell's Receive that names no command
        if command_id not in shell.results:
            raise wf.command_not_found()
        if (left := shell.ready_at.get(command_id, 0.0) - time.monotonic()) > 0:
            # Still running: held for the request's OperationTimeout, then w:TimedOut (no output yet), as Windows
            # answers a Receive on a command that has not finished (guessed: no partial stdout for sc.exe).
            wait = min(timeout, MAX_TIMEOUT) if timeout else self.server.lab.receive_wait
            time.sleep(min(left, wait))
            if shell.ready_at.get(command_id, 0.0) > time.monotonic():
                raise wf.timed_out()
            if command_id not in shell.results:  # terminated while held
                raise wf.command_not_found()
        rc, out, err = shell.results[command_id]
        resp = ET.Element(f"{{{NS['rsp']}}}ReceiveResponse")
        for name, data in (("stdout", out), ("stderr", err)):
            stream = ET.SubElement(resp, f"{{{NS['rsp']}}}Stream", {"Name": name, "CommandId": command_id, "End": "true"})
            stream.text = base64.b64encode(data.encode("utf-8")).decode() if data else None
        state = ET.SubElement(resp, f"{{{NS['rsp']}}}CommandState",
                              {"CommandId": command_id, "State": ACTION + "CommandState/Done"})
        ET.SubElement(state, f"{{{NS['rsp']}}}ExitCode").text = str(rc)
        return ACTION + "ReceiveResponse", [resp]

    def _command(self, shell: Shell, body: ET.Element | None) -> tuple[str, list[ET.Element]]:
        line = body.find("rsp:CommandLine", NS) if body is not None else None
        if line is None:
            raise WSManFault(2150858817, "w:SchemaValidationError", "Command needs a CommandLine.")
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        args = line.find("rsp:Arguments", NS)
        with shell.cond:
            ServerPipeline(shell.pool, uuid.UUID(command_id))
            if args is not None and args.text:
                self._feed(shell, base64.b64decode(args.text), uuid.UUID(command_id))
        resp = ET.Element(f"{{{NS['rsp']}}}CommandResponse")
        ET.SubElement(resp, f"{{{NS['rsp']}}}CommandId").text = command_id
        return ACTION + "CommandResponse", [resp]

    def _send_input(self, shell: Shell, body: ET.Element | None) -> tuple[str, list[ET.Element]]:
        for stream in body.findall("rsp:Send/rsp:Stream", NS) if body is not None else []:
            pid = _command_id(stream.get("CommandId"))
            with shell.cond:
                if pid is not None and pid not in shell.pool.pipeline_table:
                    raise wf.command_not_found()  # input for a pipeline this shell does not have
                self._feed(shell, base64.b64decode(stream.text or ""), pid)
        return ACTION + "SendResponse", [ET.Element(f"{{{NS['rsp']}}}SendResponse")]

    def _feed(self, shell: Shell, data: bytes, pipeline_id: uuid.UUID | None) -> None:
        """Hand PSRP fragments to psrpcore; start any pipeline they complete. Caller holds shell.cond."""
        shell.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
        for event in _drain_events(shell.pool):
            if isinstance(event, CreatePipelineEvent):
                pipeline = shell.pool.pipeline_table[event.pipeline_id]
                if shell.path == EXCHANGE_PATH:
                    self._throttle(shell, pipeline)
                threading.Thread(target=self._run_pipeline, args=(shell, pipeline), daemon=True).start()
        shell.flush()

    def _throttle(self, shell: Shell, pipeline: ServerPipeline) -> None:
        """Exchange's PowerShellMaxCmdlets budget (the throttled fault): the first `count` invocations of
        the cmdlet are refused before they run, with the user load quota fault."""
        cmdlet = pipeline.metadata.commands[0].command_text if pipeline.metadata.commands else ""
        org = self.server.lab.org
        with org.lock:
            for f in org.faults_matching("throttled", shell.server_name, cmdlet):
                hits = org.fault_hits.get(id(f), 0)
                if hits < int(f.get("count", 1)):
                    org.fault_hits[id(f)] = hits + 1
                    shell.pool.pipeline_table.pop(pipeline.pipeline_id, None)
                    # value: the quota (1000 requests per 2 seconds, as reported); seconds: the wait it names.
                    raise wf.user_load_quota(int(f.get("value") or 1000), 2, int(float(f.get("seconds", 2)) * 1000))

    def _run_pipeline(self, shell: Shell, pipeline: ServerPipeline) -> None:
        lab = self.server.lab
        commands = pipeline.metadata.commands
        with shell.cond:
            pipeline.start()
            shell.flush()
        try:
            if any(c.is_script for c in commands):
                raise LabCmdletError(
                    "The syntax is not supported by this runspace. This can occur if the runspace is in "
                    "no-language mode.", "ParserError", "ScriptsNotAllowed",
                    "System.Management.Automation.PSInvalidOperationException")
            pipe = [(c.command_text, {str(n): v for n, v in c.parameters}) for c in commands]
            if any(n in (None, "None") for c in commands for n, _ in c.parameters):
                raise LabCmdletError("Positional parameters are not accepted by this lab endpoint.",
                                     "InvalidArgument", "PositionalParameterNotFound",
                                     "System.Management.Automation.ParameterBindingException")
            delay = cmdlets.slow_seconds(lab.org, shell.server_name, pipe[0][0]) + lab.latency_for("cmdlet", pipe[0][0])
            if delay:
                with shell.cond:  # a Signal terminate ends the wait, as stopping a pipeline does
                    shell.cond.wait_for(lambda: pipeline.pipeline_id in shell.stopped, timeout=delay)
            if pipeline.pipeline_id in shell.stopped:
                return
            output = cmdlets.run_pipeline(lab.org, shell.endpoint, shell.server_name, pipe)
            with shell.cond:
                if pipeline.pipeline_id in shell.stopped:
                    return
                for obj in output:
                    pipeline.write_output(obj)
                shell.flush()
        except LabCmdletError as exc:
            with shell.cond:
                if pipeline.pipeline_id not in shell.stopped:
                    _write_error(pipeline, exc)
                    shell.flush()
        except Exception as exc:  # a lab bug must still answer like a server, not hang the client
            log.exception("lab cmdlet crashed")
            with shell.cond:
                if pipeline.pipeline_id not in shell.stopped:
                    _write_error(pipeline, LabCmdletError(f"Lab internal error: {exc}", "NotSpecified", "LabInternalError"))
                    shell.flush()
        with shell.cond:
            if pipeline.pipeline_id in shell.stopped:
                return
            pipeline.complete()
            shell.done.add(pipeline.pipeline_id)
            shell.flush()

    def _receive(self, shell: Shell, body: ET.Element | None, timeout: float,
                 max_envelope: int) -> tuple[str, list[ET.Element]]:
        """Held until there is output or the request's OperationTimeout passes (then w:TimedOut, as
        Windows answers); at most as many whole PSRP fragments as the client's MaxEnvelopeSize takes."""
        desired = body.find("rsp:Receive/rsp:DesiredStream", NS) if body is not None else None
        pid_text = desired.get("CommandId") if desired is not None else None
        pid = _command_id(pid_text)
        if pid is not None and pid not in shell.pool.pipeline_table and pid not in shell.done:
            raise wf.command_not_found()
        wait = min(timeout, MAX_TIMEOUT) if timeout else self.server.lab.receive_wait
        budget = _payload_budget(max_envelope)
        with shell.cond:
            shell.receiving += 1
            try:
                shell.cond.wait_for(lambda: bool(shell.outbox.get(pid)) or self.server.shells.get(shell.shell_id) is None,
                                    timeout=wait)
            finally:
                shell.receiving -= 1
            data = shell.take(pid, budget)
            finished = pid is not None and pid in shell.done and not shell.outbox.get(pid)
        shell.last_used = time.monotonic()
        if not data:
            if self.server.shells.get(shell.shell_id) is None:  # recycled or expired while held
                raise wf.shell_not_found(shell.shell_id)
            raise wf.timed_out()
        resp = ET.Element(f"{{{NS['rsp']}}}ReceiveResponse")
        attrs = {"Name": "stdout", **({"CommandId": pid_text} if pid_text else {})}
        for chunk in data:
            ET.SubElement(resp, f"{{{NS['rsp']}}}Stream", attrs).text = base64.b64encode(chunk).decode()
        if pid_text:  # the pool's own Receive carries no CommandState (as recorded from Windows)
            state = ACTION + ("CommandState/Done" if finished else "CommandState/Running")
            cs = ET.SubElement(resp, f"{{{NS['rsp']}}}CommandState", {"CommandId": pid_text, "State": state})
            if finished:
                ET.SubElement(cs, f"{{{NS['rsp']}}}ExitCode").text = "0"
        return ACTION + "ReceiveResponse", [resp]

    def _signal(self, shell: Shell, body: ET.Element | None) -> tuple[str, list[ET.Element]]:
        """Signal terminate stops a running pipeline (PowerShell answers it Stopped) and frees it."""
        signal = body.find("rsp:Signal", NS) if body is not None else None
        pid = signal.get("CommandId") if signal is not None else None
        if pid:
            pipeline_id = _command_id(pid)
            with shell.cond:
                pipeline = shell.pool.pipeline_table.get(pipeline_id)
                if pipeline is None and pipeline_id not in shell.done:
                    raise wf.command_not_found()
                if pipeline is not None and pipeline_id not in shell.done:
                    shell.stopped.add(pipeline_id)
                    try:
                        pipeline.stop()  # PipelineState Stopped with PipelineStoppedException, as PowerShell
                    except Exception as exc:  # not yet started: nothing to stop
                        log.debug("stopping %s: %s", pid, exc)
                if pipeline is not None:
                    try:
                        pipeline.close()
                    except Exception as exc:
                        log.debug("closing %s: %s", pid, exc)
                shell.outbox.pop(pipeline_id, None)
                shell.done.discard(pipeline_id)
                shell.pool.data_to_send()  # what stop() queued is for a client that no longer listens
                shell.cond.notify_all()
        return ACTION + "SignalResponse", [ET.Element(f"{{{NS['rsp']}}}SignalResponse")]


_PATH_PLUGINS = {EXCHANGE_PATH: wf.EXCHANGE_PLUGIN, WSMAN_PATH: wf.WINDOWS_POWERSHELL_PLUGIN}


def _plugin(envelope: ET.Element, path: str) -> tuple[str, str]:
    """The WSMan plug-in that would answer this request on Windows: Exchange's PowerShell on /PowerShell,
    the cmd shell or Windows PowerShell on /wsman."""
    resource = (_text(envelope, "s:Header/wsman:ResourceURI") or "").lower()
    if path == WSMAN_PATH and resource == RESOURCE_CMD.lower():
        return wf.CMD_PLUGIN
    return _PATH_PLUGINS.get(path, wf.WINDOWS_POWERSHELL_PLUGIN)


def _hostile(lab: LabServer, server: str, action: str) -> wf.HostileAnswer | None:
    """The hostile_response fault (shape, and optionally the WSMan action it answers: Create, Command,
    Receive...; default every request) of this server, if any."""
    for f in lab.org.faults_matching("hostile_response", server):
        if not f.get("action") or action.rsplit("/", 1)[-1].lower() == str(f.get("action")).lower():
            return wf.hostile_answer(str(f.get("shape", "malformed_xml")), float(f.get("size_mb", 200)))
    return None


def _drain_events(pool: ServerRunspacePool) -> list[Any]:
    events = []
    while (event := pool.next_event()) is not None:
        events.append(event)
    return events


CATEGORY_NUMBERS = {c.name: c for c in ErrorCategory}


def _write_error(pipeline: ServerPipeline, exc: LabCmdletError) -> None:
    category = CATEGORY_NUMBERS.get(exc.category, ErrorCategory.NotSpecified)
    exception = NETException(Message=exc.message)
    # The exception's own .NET type heads the hierarchy, as PowerShell serializes it.
    exception.PSObject.type_names[:] = [exc.exception_type, "System.Exception", "System.Object"]
    pipeline.write_error(
        exception,
        ErrorCategoryInfo(Category=category, Activity=exc.activity, Reason=exc.exception_type.rsplit(".", 1)[-1],
                          TargetName=exc.target or "", TargetType="String" if exc.target else ""),
        target_object=exc.target,
        fully_qualified_error_id=exc.error_id,
    )


def _command_id(text: str | None) -> uuid.UUID | None:
    """A CommandId selector as a UUID; one that is not a GUID names no command of this shell (Windows answers
    such an id as it answers an unknown one: guessed)."""
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise wf.command_not_found() from None


def _text(root: ET.Element, path: str) -> str | None:
    el = root.find(path, NS)
    return el.text if el is not None else None


def _idle_timeout(shell_el: ET.Element | None) -> float | None:
    """The rsp:IdleTimeOut a client put in its Create (PT<seconds>S), or None when it asked for none."""
    text = _text(shell_el, "rsp:IdleTimeOut") if shell_el is not None else None
    seconds = _duration(text)
    return seconds if seconds > 0 else None


def _option(envelope: ET.Element, name: str) -> bool:
    """A boolean wsman:Option of the request's OptionSet (WINRS_SKIP_CMD_SHELL, WINRS_CONSOLEMODE_STDIN...)."""
    for option in envelope.findall("s:Header/wsman:OptionSet/wsman:Option", NS):
        if option.get("Name") == name:
            return (option.text or "").strip().lower() == "true"
    return False


def _selector(envelope: ET.Element, name: str) -> str | None:
    for sel in envelope.findall("s:Header/wsman:SelectorSet/wsman:Selector", NS):
        if sel.get("Name") == name:
            return sel.text
    return None


def _duration(text: str | None) -> float:
    if not text or not text.startswith("PT") or not text.endswith("S"):
        return 0.0
    try:
        return float(text[2:-1])
    except ValueError:
        return 0.0


def _payload_budget(max_envelope: int) -> int:
    """Bytes of PSRP data one response can carry: base64 inside what MaxEnvelopeSize leaves after the
    SOAP around it."""
    return max(64, (max_envelope - ENVELOPE_OVERHEAD) * 3 // 4)


def _xs_duration(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"P{s // 86400}DT{s % 86400 // 3600}H{s % 3600 // 60}M{s % 60}S"


def _reset(conn: socket.socket) -> None:
    """Close a client connection with a TCP reset (SO_LINGER 0), as a dying server does."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


def _envelope(action: str, relates_to: str, body_els: list[ET.Element]) -> bytes:
    env = ET.Element(f"{{{NS['s']}}}Envelope")
    header = ET.SubElement(env, f"{{{NS['s']}}}Header")
    ET.SubElement(header, f"{{{NS['wsa']}}}Action").text = action
    ET.SubElement(header, f"{{{NS['wsa']}}}MessageID").text = f"uuid:{uuid.uuid4()}"
    ET.SubElement(header, f"{{{NS['wsa']}}}RelatesTo").text = relates_to
    ET.SubElement(header, f"{{{NS['wsa']}}}To").text = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
    body = ET.SubElement(env, f"{{{NS['s']}}}Body")
    body.extend(body_els)
    return ET.tostring(env, encoding="utf-8", xml_declaration=False)
