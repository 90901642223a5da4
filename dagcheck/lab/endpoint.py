"""One simulated server's listener, and what the wire asks of the lab that serves it.

The wire is split by concern: HTTP and authentication (dagcheck.lab.handler), the WSMan actions
(dagcheck.lab.wsman), PSRP pipelines (dagcheck.lab.psrp) and WinRS commands (dagcheck.lab.winrs_shell).
They all reach the lab (dagcheck.lab.server.LabServer) through WireLab, declared here, so that none of
them imports the module that starts them.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import threading
from dataclasses import dataclass
from typing import Protocol

from spnego.channel_bindings import GssChannelBindings

from dagcheck.lab import wire
from dagcheck.lab.auth import LabCredentials
from dagcheck.lab.settings import Fault
from dagcheck.lab.shells import AnyShell, ShellTable
from dagcheck.lab.state import Organization
from dagcheck.lab.tls import LabCertificate


class WireLab(Protocol):
    """The lab's settings and controls the wire uses (dagcheck.lab.server.LabServer is the one)."""

    @property
    def org(self) -> Organization: ...

    @property
    def auth(self) -> str: ...  # basic, ntlm or negotiate

    @property
    def credentials(self) -> LabCredentials: ...

    @property
    def certificate(self) -> LabCertificate | None: ...  # None: plain HTTP

    @property
    def channel_bindings(self) -> GssChannelBindings | None: ...

    @property
    def receive_wait(self) -> float: ...

    @property
    def max_envelope_kb(self) -> int: ...

    def dropped(self, server: str) -> bool: ...

    def count_failed_logon(self, server: str) -> None: ...

    def fault_fires(self, kind: str, server: str, cmdlet: str | None = None) -> Fault | None: ...

    def reboot(self, server: str, seconds: float) -> None: ...

    def recycle_app_pool(self, server: str) -> int: ...

    def idle_timeout_for(self, server: str) -> float: ...

    def max_idle_timeout_for(self, server: str) -> float: ...

    def shell_idle_timeout(self, shell: AnyShell) -> float: ...

    def shell_limit(self, server: str, path: str) -> int: ...

    def latency_for(self, kind: str, cmdlet: str = "") -> float: ...


class LabEndpointServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """The HTTP listener of one simulated server."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, lab: WireLab, server_name: str, handler: type[http.server.BaseHTTPRequestHandler], port: int = 0) -> None:
        self.lab = lab
        self.sim_server = server_name
        self.shells = ShellTable()
        self.connections: set[socket.socket] = set()  # open client connections: a reboot resets them
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), handler)

    def reset_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            wire.reset(conn)


@dataclass(frozen=True)
class Request:
    """One WSMan request as the actions see it: the server it reached and who sent it."""

    endpoint: LabEndpointServer
    url: str  # as the client sent it: ResourceCreated's address echoes it
    owner: str  # the authenticated user, whose shells the quotas count
