"""HTTP and authentication of one request to a simulated server, as a WinRM listener answers them.

Every POST gets an answer, as from Windows: Basic, NTLM or Negotiate (Kerberos or NTLM, with WSMan
message encryption: dagcheck.lab.auth) first, then the SOAP envelope goes to the WSMan actions
(dagcheck.lab.wsman); a request the lab cannot make sense of is a SOAP fault, never a dropped
connection. GET serves the protocols' health pages (dagcheck.lab.health_pages). The wire's faults that
act here (dropped_connection, auth_rejected, hostile_response, reboot) come from the organisation's
runtime faults; their shapes are in dagcheck.lab.wirefaults.
"""

from __future__ import annotations

import base64
import http.server
import logging
import secrets
import threading
import xml.etree.ElementTree as ET
from typing import Any

import spnego
from spnego.exceptions import SpnegoError

from dagcheck.lab import auth as negotiate
from dagcheck.lab import health_pages, products, wire, wsman
from dagcheck.lab import wirefaults as wf
from dagcheck.lab.endpoint import LabEndpointServer, Request, WireLab
from dagcheck.lab.shells import EXCHANGE_PATH
from dagcheck.lab.wire import ACTION, PATH_PLUGINS, PATHS, SOAP_CONTENT_TYPE, fault_envelope, plugin, reset, text
from dagcheck.lab.wirefaults import WSManFault

log = logging.getLogger(__name__)


class Handler(http.server.BaseHTTPRequestHandler):
    """One keep-alive connection to a simulated server; it lives as long as the connection (NTLM's state too)."""

    server: LabEndpointServer
    _ntlm: Any  # the connection's NTLM acceptor (spnego), or None after a failed step
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
            fault = wf.plugin_error(
                PATH_PLUGINS.get(self.path.split("?", 1)[0].rstrip("/").lower(), wf.WINDOWS_POWERSHELL_PLUGIN),
                f"{type(exc).__name__}: {exc}",
            )
            self._fault(None, fault)

    def _post(self) -> None:
        lab = self.server.lab
        self._sealed = None  # the protocol this request was sealed under: its response is sealed too
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if lab.dropped(self.server.sim_server):
            # A dropped connection: no response at all, the socket is reset.
            self.close_connection = True
            reset(self.connection)
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
                lab.count_failed_logon(self.server.sim_server)
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
            self._fault(
                None,
                WSManFault(
                    2150858817,
                    "w:SchemaValidationError",
                    "The SOAP XML in the message does not match the corresponding XML schema definition.",
                    400,
                ),
            )
            return
        message_id = text(envelope, "s:Header/wsa:MessageID") or ""
        action = text(envelope, "s:Header/wsa:Action") or ""
        server = self.server.sim_server
        if (hostile := _hostile(lab, server, action)) is not None:
            self._send_hostile(hostile)
            return
        if action == ACTION + "Command" and (f := lab.fault_fires("reboot", server)) is not None:
            # The server goes down under this request: no answer, then connection refused for a while.
            self.close_connection = True
            threading.Thread(target=lab.reboot, args=(server, float(f.get("seconds", 3))), daemon=True).start()
            reset(self.connection)
            return
        self.server.shells.expire_idle(lab.idle_timeout_for(server), lab.max_idle_timeout_for(server))
        try:
            response = wsman.dispatch(Request(self.server, self.path, self._owner()), envelope, path)
        except WSManFault as fault:
            self._fault(message_id, fault)
            return
        except Exception as exc:  # noqa: BLE001 - a request the lab cannot process is answered, never dropped
            log.debug("%s: %s could not be processed", server, action, exc_info=True)
            self._fault(message_id, wf.plugin_error(plugin(envelope, path), f"{type(exc).__name__}: {exc}"))
            return
        action, body_els = response
        self._send(200, wire.envelope(action, message_id, body_els), SOAP_CONTENT_TYPE)

    def do_GET(self) -> None:
        """The protocols' health pages (dagcheck.lab.health_pages): anonymous, as on a real front end."""
        lab = self.server.lab
        if lab.dropped(self.server.sim_server):
            self.close_connection = True
            reset(self.connection)
            return
        page = health_pages.answer(lab.org, self.server.sim_server, self.path)
        if page is None:
            self._send(404, b"", "text/plain")
            return
        self._send(*page)

    def _owner(self) -> str:
        """The authenticated user, whose shells the quotas count."""
        acceptor: negotiate.NegotiateAcceptor | None = getattr(self, "_negotiate", None)
        return (
            (acceptor.principal if acceptor else None)
            or getattr(self, "_ntlm_user", None)
            or getattr(self, "_basic_user", None)
            or self.server.lab.credentials.username
        )

    def _negotiate_authorized(self) -> bool:
        """Kerberos or NTLM under Negotiate (dagcheck.lab.auth); sends the 401s itself."""
        acceptor: negotiate.NegotiateAcceptor | None = getattr(self, "_negotiate", None)
        rejected = bool(self.server.lab.org.faults_matching("auth_rejected", self.server.sim_server))
        if acceptor is not None and acceptor.complete and not rejected:
            return True
        if acceptor is None:
            fqdn = self.server.lab.org.servers[self.server.sim_server.lower()].fqdn
            acceptor = self._negotiate = negotiate.NegotiateAcceptor(
                fqdn, self._token_checking(), self.server.lab.channel_bindings
            )
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
            self.server.lab.count_failed_logon(self.server.sim_server)
            self._challenge(None)
            return False
        bindings = self.server.lab.channel_bindings
        if bindings is not None and not negotiate.channel_binding_allowed(
            self._token_checking(), negotiate.ntlm_channel_binding(data), bindings
        ):
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
        sealed: str | None = getattr(self, "_sealed", None)
        if sealed and data:
            content_type, data = negotiate.wrap(self._security_context(), data, sealed)
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
        self._send(fault.status, fault_envelope(message_id, fault, self.server.sim_server), SOAP_CONTENT_TYPE)


def _hostile(lab: WireLab, server: str, action: str) -> wf.HostileAnswer | None:
    """The hostile_response fault (shape, and optionally the WSMan action it answers: Create, Command,
    Receive...; default every request) of this server, if any."""
    for f in lab.org.faults_matching("hostile_response", server):
        if not f.get("action") or action.rsplit("/", 1)[-1].lower() == str(f.get("action")).lower():
            return wf.hostile_answer(str(f.get("shape", "malformed_xml")), float(f.get("size_mb", 200)))
    return None
