"""The lab's WSMan + PSRP server: each simulated server listens on its own loopback port.

Paths: /PowerShell (configuration Microsoft.Exchange, as on an Exchange server's IIS) and /wsman
(configuration Microsoft.PowerShell, the Windows endpoint). psrpcore's ServerRunspacePool and
ServerPipeline speak PSRP; this module speaks WSMan (Create, Command, Send, Receive, Signal,
Delete) around them and runs the lab's cmdlets. Pipelines run on worker threads so that a slow
cmdlet makes Receive wait, as with a real server.
"""

from __future__ import annotations

import base64
import http.server
import logging
import os
import secrets
import shutil
import socket
import socketserver
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import spnego
from psrpcore import PSRPPayload, ServerPipeline, ServerRunspacePool, StreamType
from psrpcore._events import CreatePipelineEvent
from psrpcore.types import ErrorCategory, ErrorCategoryInfo, NETException
from spnego.exceptions import SpnegoError

from dagcheck.lab import cmdlets, winrs
from dagcheck.lab.cmdlets.base import EXCHANGE, WINDOWS
from dagcheck.lab.errors import LabCmdletError
from dagcheck.lab.state import Organization
from dagcheck.lab.tls import LabCertificate

log = logging.getLogger(__name__)

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "pwsh": "http://schemas.microsoft.com/powershell",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

ACTION = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
RESOURCE_EXCHANGE = "http://schemas.microsoft.com/powershell/Microsoft.Exchange"
RESOURCE_WINDOWS = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
CMD = "cmd"
# Per HTTP path, the resource URIs served there and what answers them.
PATHS = {
    "/powershell": {RESOURCE_EXCHANGE: EXCHANGE},
    "/wsman": {RESOURCE_WINDOWS: WINDOWS, RESOURCE_CMD: CMD},
}
TIMED_OUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT: no output within OperationTimeout
SIGNAL_TERMINATE = ACTION + "signal/terminate"


class WSManFault(Exception):
    def __init__(self, code: int, subcode: str, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.code, self.subcode, self.message, self.status = code, subcode, message, status


@dataclass
class Shell:
    """One client runspace pool: psrpcore's state machine plus per-target outboxes for Receive."""

    shell_id: str
    endpoint: str
    server_name: str
    pool: ServerRunspacePool
    outbox: dict[uuid.UUID | None, bytearray] = field(default_factory=dict)
    done: set[uuid.UUID] = field(default_factory=set)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def flush(self) -> None:
        """Move what psrpcore has queued into the outbox of its target (pool or pipeline). Hold cond."""
        while (payload := self.pool.data_to_send()) is not None:
            self.outbox.setdefault(payload.pipeline_id, bytearray()).extend(payload.data)
        self.cond.notify_all()


@dataclass
class CmdShell:
    """A WinRS cmd shell: commands run at once; their (exit code, stdout, stderr) wait for Receive."""

    shell_id: str
    server_name: str
    results: dict[str, tuple[int, str, str]] = field(default_factory=dict)


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
        self.shells: dict[str, Shell] = {}
        self.shells_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)


class LabServer:
    """All endpoints of the simulated organisation; start() binds one port per server."""

    def __init__(self, org: Organization, credentials: LabCredentials | None = None,
                 ports: dict[str, int] | None = None, receive_wait: float = 5.0, https: bool = False,
                 auth: str = "basic") -> None:
        if auth not in ("basic", "ntlm"):
            raise ValueError(f"the lab serves basic or ntlm auth, not {auth!r}")
        self.org = org
        self.auth = auth
        self._ntlm_store: NtlmStore | None = None
        self.certificate = LabCertificate() if https else None
        self._tls = self.certificate.server_context() if self.certificate else None
        self.credentials = credentials or LabCredentials.generate()
        self.endpoints: dict[str, LabEndpointServer] = {}
        self.threads: list[threading.Thread] = []
        self._ports = ports or {}
        self.receive_wait = receive_wait

    def start(self) -> LabServer:
        if self.auth == "ntlm":
            self._ntlm_store = NtlmStore(self.credentials)
        for name, server in self.org.servers.items():
            endpoint = LabEndpointServer(self, server.name, self._ports.get(name, 0))
            if self._tls is not None:
                endpoint.socket = self._tls.wrap_socket(endpoint.socket, server_side=True)
            self.endpoints[name] = endpoint
            thread = threading.Thread(target=endpoint.serve_forever, name=f"lab-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.shutdown()
            endpoint.server_close()
        if self._ntlm_store is not None:
            self._ntlm_store.remove()

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def port(self, server: str) -> int:
        return self.endpoints[server.lower()].server_address[1]

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

    # ---- HTTP ---------------------------------------------------------------------------------

    def do_POST(self) -> None:
        lab = self.server.lab
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if lab.dropped(self.server.sim_server):
            # A dropped connection: no response at all, the socket is reset.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            self.connection.close()
            return
        path = self.path.split("?", 1)[0].rstrip("/").lower()
        if path not in PATHS:
            self._send(404, b"", "text/plain")
            return
        if self.server.lab.auth == "ntlm":
            if not self._ntlm_authorized():
                return
        elif not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="WSMan"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            envelope = ET.fromstring(body)
        except ET.ParseError:
            self._fault(None, WSManFault(2150858817, "w:SchemaValidationError", "The SOAP XML in the message does not match the corresponding XML schema definition.", 400))
            return
        message_id = _text(envelope, "s:Header/wsa:MessageID") or ""
        try:
            response = self._dispatch(envelope, path)
        except WSManFault as fault:
            self._fault(message_id, fault)
            return
        action, body_el = response
        self._send(200, _envelope(action, message_id, body_el), "application/soap+xml;charset=UTF-8")

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
        return secrets.compare_digest(user, creds.username) and secrets.compare_digest(password, creds.password)

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
            self._challenge(None)
            return False
        self._ntlm_user = self._ntlm.client_principal or "authenticated"
        return True

    def _challenge(self, token: bytes | None) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", "Negotiate" + (f" {base64.b64encode(token).decode()}" if token else ""))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, message_id: str | None, fault: WSManFault) -> None:
        body = ET.Element(f"{{{NS['s']}}}Fault")
        code = ET.SubElement(body, f"{{{NS['s']}}}Code")
        ET.SubElement(code, f"{{{NS['s']}}}Value").text = "s:Receiver" if fault.status == 500 else "s:Sender"
        sub = ET.SubElement(code, f"{{{NS['s']}}}Subcode")
        ET.SubElement(sub, f"{{{NS['s']}}}Value").text = fault.subcode
        reason = ET.SubElement(body, f"{{{NS['s']}}}Reason")
        ET.SubElement(reason, f"{{{NS['s']}}}Text", {"xml:lang": "en-US"}).text = fault.message
        detail = ET.SubElement(body, f"{{{NS['s']}}}Detail")
        wf = ET.SubElement(detail, f"{{{NS['wsmanfault']}}}WSManFault",
                           {"Code": str(fault.code), "Machine": self.server.sim_server})
        ET.SubElement(wf, f"{{{NS['wsmanfault']}}}Message").text = fault.message
        data = _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", message_id or "", body)
        self._send(fault.status, data, "application/soap+xml;charset=UTF-8")

    # ---- WSMan actions ------------------------------------------------------------------------

    def _dispatch(self, envelope: ET.Element, path: str) -> tuple[str, ET.Element | None]:
        action = _text(envelope, "s:Header/wsa:Action") or ""
        resource = _text(envelope, "s:Header/wsman:ResourceURI") or ""
        endpoint = next((e for r, e in PATHS[path].items() if r.lower() == resource.lower()), None)
        if endpoint is None:
            raise WSManFault(2150858811, "w:InvalidResourceURI",
                             f"The WS-Management service cannot process the request. The resource URI ({resource}) "
                             "was not found in the WS-Management catalog.")
        body = envelope.find("s:Body", NS)
        shell_id = _selector(envelope, "ShellId")
        if action == TRANSFER + "Create":
            return self._create_cmd(body, resource) if endpoint == CMD else self._create(body, endpoint, resource)
        shell = self._shell(shell_id)
        if isinstance(shell, CmdShell) and action in (ACTION + "Command", ACTION + "Receive", ACTION + "Signal", ACTION + "Send"):
            return self._cmd_action(shell, action, body)
        if action == ACTION + "Command":
            return self._command(shell, body)
        if action == ACTION + "Send":
            return self._send_input(shell, body)
        if action == ACTION + "Receive":
            timeout = _duration(_text(envelope, "s:Header/wsman:OperationTimeout"))
            return self._receive(shell, body, timeout)
        if action == ACTION + "Signal":
            return self._signal(shell, body)
        if action == TRANSFER + "Delete":
            with self.server.shells_lock:
                self.server.shells.pop(shell.shell_id.upper(), None)
            return TRANSFER + "DeleteResponse", None
        raise WSManFault(2150858770, "wsa:ActionNotSupported", f"The action {action} is not supported by the service.")

    def _shell(self, shell_id: str | None) -> Shell | CmdShell:
        with self.server.shells_lock:
            shell = self.server.shells.get((shell_id or "").upper())
        if shell is None:
            raise WSManFault(2150858843, "w:InvalidSelectors",
                             "The request for the Windows Remote Shell with ShellId "
                             f"{shell_id} failed because the shell was not found on the server.")
        return shell

    def _create(self, body: ET.Element | None, endpoint: str, resource: str) -> tuple[str, ET.Element]:
        shell_el = body.find("rsp:Shell", NS) if body is not None else None
        creation = shell_el.find("pwsh:creationXml", NS) if shell_el is not None else None
        if shell_el is None or creation is None or not creation.text:
            raise WSManFault(2150858817, "w:SchemaValidationError", "A PowerShell shell needs creationXml.")
        shell_id = (shell_el.get("ShellId") or str(uuid.uuid4())).upper()
        pool = ServerRunspacePool()
        shell = Shell(shell_id, endpoint, self.server.sim_server, pool)
        with shell.cond:
            pool.receive_data(PSRPPayload(base64.b64decode(creation.text), StreamType.default, None))
            _drain_events(pool)
            shell.flush()
        with self.server.shells_lock:
            self.server.shells[shell_id] = shell
        return TRANSFER + "CreateResponse", self._resource_created(shell_id, resource, "stdin pr", "stdout")

    def _create_cmd(self, body: ET.Element | None, resource: str) -> tuple[str, ET.Element]:
        """A WinRS cmd shell (what pypsrp's WinRS and testinfra-style command runners open)."""
        if body is None or body.find("rsp:Shell", NS) is None:
            raise WSManFault(2150858817, "w:SchemaValidationError", "Create needs a Shell element.")
        shell_id = str(uuid.uuid4()).upper()
        with self.server.shells_lock:
            self.server.shells[shell_id] = CmdShell(shell_id, self.server.sim_server)
        return TRANSFER + "CreateResponse", self._resource_created(shell_id, resource, "stdin", "stdout stderr")

    def _resource_created(self, shell_id: str, resource: str, inputs: str, outputs: str) -> ET.Element:
        resp = ET.Element(f"{{{NS['wst']}}}ResourceCreated")
        ET.SubElement(resp, f"{{{NS['wsa']}}}Address").text = f"http://127.0.0.1{self.path}"
        ref = ET.SubElement(resp, f"{{{NS['wsa']}}}ReferenceParameters")
        ET.SubElement(ref, f"{{{NS['wsman']}}}ResourceURI").text = resource
        sel = ET.SubElement(ET.SubElement(ref, f"{{{NS['wsman']}}}SelectorSet"), f"{{{NS['wsman']}}}Selector", {"Name": "ShellId"})
        sel.text = shell_id
        info = ET.SubElement(resp, f"{{{NS['rsp']}}}Shell")
        for tag, value in (("ShellId", shell_id), ("ResourceUri", resource),
                           ("Owner", self.server.lab.credentials.username), ("ClientIP", "127.0.0.1"),
                           ("IdleTimeOut", "PT7200.000S"), ("InputStreams", inputs), ("OutputStreams", outputs),
                           ("ShellRunTime", "P0DT0H0M0S"), ("ShellInactivity", "P0DT0H0M0S")):
            ET.SubElement(info, f"{{{NS['rsp']}}}{tag}").text = value
        return resp

    def _cmd_action(self, shell: CmdShell, action: str, body: ET.Element | None) -> tuple[str, ET.Element]:
        if action == ACTION + "Send":  # the lab's commands read no input
            return ACTION + "SendResponse", ET.Element(f"{{{NS['rsp']}}}SendResponse")
        if action == ACTION + "Command":
            line = body.find("rsp:CommandLine", NS) if body is not None else None
            if line is None:
                raise WSManFault(2150858817, "w:SchemaValidationError", "Command needs a CommandLine.")
            command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
            words = [_text(line, "rsp:Command") or ""] + [a.text or "" for a in line.findall("rsp:Arguments", NS)]
            shell.results[command_id] = winrs.run(self.server.lab.org, shell.server_name, " ".join(w for w in words if w))
            resp = ET.Element(f"{{{NS['rsp']}}}CommandResponse")
            ET.SubElement(resp, f"{{{NS['rsp']}}}CommandId").text = command_id
            return ACTION + "CommandResponse", resp
        if action == ACTION + "Signal":
            signal = body.find("rsp:Signal", NS) if body is not None else None
            shell.results.pop((signal.get("CommandId") or "").upper() if signal is not None else "", None)
            return ACTION + "SignalResponse", ET.Element(f"{{{NS['rsp']}}}SignalResponse")
        desired = body.find("rsp:Receive/rsp:DesiredStream", NS) if body is not None else None
        command_id = (desired.get("CommandId") or "").upper() if desired is not None else ""
        if command_id not in shell.results:
            raise WSManFault(2150858843, "w:InvalidSelectors", f"The command {command_id} was not found in shell {shell.shell_id}.")
        rc, out, err = shell.results[command_id]
        resp = ET.Element(f"{{{NS['rsp']}}}ReceiveResponse")
        for name, data in (("stdout", out), ("stderr", err)):
            stream = ET.SubElement(resp, f"{{{NS['rsp']}}}Stream", {"Name": name, "CommandId": command_id, "End": "true"})
            stream.text = base64.b64encode(data.encode("utf-8")).decode() if data else None
        state = ET.SubElement(resp, f"{{{NS['rsp']}}}CommandState",
                              {"CommandId": command_id, "State": ACTION + "CommandState/Done"})
        ET.SubElement(state, f"{{{NS['rsp']}}}ExitCode").text = str(rc)
        return ACTION + "ReceiveResponse", resp

    def _command(self, shell: Shell, body: ET.Element | None) -> tuple[str, ET.Element]:
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
        return ACTION + "CommandResponse", resp

    def _send_input(self, shell: Shell, body: ET.Element | None) -> tuple[str, ET.Element]:
        for stream in body.findall("rsp:Send/rsp:Stream", NS) if body is not None else []:
            pid = stream.get("CommandId")
            with shell.cond:
                self._feed(shell, base64.b64decode(stream.text or ""), uuid.UUID(pid) if pid else None)
        return ACTION + "SendResponse", ET.Element(f"{{{NS['rsp']}}}SendResponse")

    def _feed(self, shell: Shell, data: bytes, pipeline_id: uuid.UUID | None) -> None:
        """Hand PSRP fragments to psrpcore; start any pipeline they complete. Caller holds shell.cond."""
        shell.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
        for event in _drain_events(shell.pool):
            if isinstance(event, CreatePipelineEvent):
                pipeline = shell.pool.pipeline_table[event.pipeline_id]
                threading.Thread(target=self._run_pipeline, args=(shell, pipeline), daemon=True).start()
        shell.flush()

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
            delay = cmdlets.slow_seconds(lab.org, shell.server_name, pipe[0][0])
            if delay:
                time.sleep(delay)
            output = cmdlets.run_pipeline(lab.org, shell.endpoint, shell.server_name, pipe)
            with shell.cond:
                for obj in output:
                    pipeline.write_output(obj)
                shell.flush()
        except LabCmdletError as exc:
            with shell.cond:
                _write_error(pipeline, exc)
                shell.flush()
        except Exception as exc:  # a lab bug must still answer like a server, not hang the client
            log.exception("lab cmdlet crashed")
            with shell.cond:
                _write_error(pipeline, LabCmdletError(f"Lab internal error: {exc}", "NotSpecified", "LabInternalError"))
                shell.flush()
        with shell.cond:
            pipeline.complete()
            shell.done.add(pipeline.pipeline_id)
            shell.flush()

    def _receive(self, shell: Shell, body: ET.Element | None, timeout: float) -> tuple[str, ET.Element]:
        desired = body.find("rsp:Receive/rsp:DesiredStream", NS) if body is not None else None
        pid_text = desired.get("CommandId") if desired is not None else None
        pid = uuid.UUID(pid_text) if pid_text else None
        wait = min(timeout, self.server.lab.receive_wait) if timeout else self.server.lab.receive_wait
        with shell.cond:
            shell.cond.wait_for(lambda: bool(shell.outbox.get(pid)), timeout=wait)
            data = bytes(shell.outbox.pop(pid, b""))
            finished = pid is not None and pid in shell.done and not shell.outbox.get(pid)
        if not data:
            raise WSManFault(TIMED_OUT, "w:TimedOut", "The WS-Management service cannot complete the operation within "
                             "the time specified in OperationTimeout.")
        resp = ET.Element(f"{{{NS['rsp']}}}ReceiveResponse")
        attrs = {"Name": "stdout"}
        if pid_text:
            attrs["CommandId"] = pid_text
        ET.SubElement(resp, f"{{{NS['rsp']}}}Stream", attrs).text = base64.b64encode(data).decode()
        state = ACTION + ("CommandState/Done" if finished else "CommandState/Running")
        cs = ET.SubElement(resp, f"{{{NS['rsp']}}}CommandState", {"State": state, **({"CommandId": pid_text} if pid_text else {})})
        if finished:
            ET.SubElement(cs, f"{{{NS['rsp']}}}ExitCode").text = "0"
        return ACTION + "ReceiveResponse", resp

    def _signal(self, shell: Shell, body: ET.Element | None) -> tuple[str, ET.Element]:
        signal = body.find("rsp:Signal", NS) if body is not None else None
        pid = signal.get("CommandId") if signal is not None else None
        if pid:
            with shell.cond:
                pipeline = shell.pool.pipeline_table.get(uuid.UUID(pid))
                if pipeline is not None and uuid.UUID(pid) in shell.done:
                    pipeline.close()
                shell.outbox.pop(uuid.UUID(pid), None)
                shell.done.discard(uuid.UUID(pid))
        return ACTION + "SignalResponse", ET.Element(f"{{{NS['rsp']}}}SignalResponse")


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


def _text(root: ET.Element, path: str) -> str | None:
    el = root.find(path, NS)
    return el.text if el is not None else None


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


def _envelope(action: str, relates_to: str, body_el: ET.Element | None) -> bytes:
    env = ET.Element(f"{{{NS['s']}}}Envelope")
    header = ET.SubElement(env, f"{{{NS['s']}}}Header")
    ET.SubElement(header, f"{{{NS['wsa']}}}Action").text = action
    ET.SubElement(header, f"{{{NS['wsa']}}}MessageID").text = f"uuid:{uuid.uuid4()}"
    ET.SubElement(header, f"{{{NS['wsa']}}}RelatesTo").text = relates_to
    ET.SubElement(header, f"{{{NS['wsa']}}}To").text = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
    body = ET.SubElement(env, f"{{{NS['s']}}}Body")
    if body_el is not None:
        body.append(body_el)
    return ET.tostring(env, encoding="utf-8", xml_declaration=False)
