"""The lab's WSMan + PSRP server: each simulated server listens on its own loopback port.

Paths: /PowerShell (configuration Microsoft.Exchange, as on an Exchange server's IIS) and /wsman
(configuration Microsoft.PowerShell, the Windows endpoint). This module starts and stops the listeners
and holds the lab's controls over them (reboot, application-pool recycle, idle expiry, quotas, latency);
a request is answered by the wire, split by concern: HTTP and authentication (dagcheck.lab.handler), the
WSMan actions (dagcheck.lab.wsman), PSRP (dagcheck.lab.psrp), WinRS (dagcheck.lab.winrs_shell), over the
listener and the interface declared in dagcheck.lab.endpoint.

Shells end as on real servers (dagcheck.lab.shells): IdleTimeOut, an application-pool recycle, a
reboot (the listener closes: connection refused until it is back). Quotas are enforced per user:
Exchange's PowerShellMaxConcurrency on /PowerShell, WinRM's MaxShellsPerUser on /wsman. The fault
shapes are in dagcheck.lab.wirefaults.
"""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor

from dagcheck.lab import auth as negotiate
from dagcheck.lab.auth import LabCredentials, NtlmStore
from dagcheck.lab.endpoint import LabEndpointServer
from dagcheck.lab.handler import Handler
from dagcheck.lab.settings import Fault, LabLatency
from dagcheck.lab.shells import EXCHANGE_PATH, AnyShell
from dagcheck.lab.state import Organization
from dagcheck.lab.tls import LabCertificate
from dagcheck.lab.wire import MAX_IDLE_TIMEOUT, MAX_TIMEOUT

log = logging.getLogger(__name__)


class LabServer:
    """All endpoints of the simulated organisation; start() binds one port per server."""

    def __init__(
        self,
        org: Organization,
        credentials: LabCredentials | None = None,
        ports: dict[str, int] | None = None,
        receive_wait: float = MAX_TIMEOUT,
        https: bool = False,
        auth: str = "basic",
        idle_timeout: float = 7200.0,
        max_shells_per_user: int = 30,
        powershell_max_concurrency: int = 18,
        max_envelope_kb: int = 500,
        latency: LabLatency | None = None,
    ) -> None:
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
        endpoint = LabEndpointServer(self, server_name, Handler, port)
        if self._tls is not None:
            endpoint.socket = self._tls.wrap_socket(endpoint.socket, server_side=True)
        self._ports[name] = endpoint.server_address[1]
        self.endpoints[name] = endpoint
        # A connection wakes the loop at once; the interval only bounds how long stop() waits (all
        # listeners stop together), and each wake-up costs CPU: ten a second per server were 3000 at 300.
        thread = threading.Thread(target=endpoint.serve_forever, kwargs={"poll_interval": 0.25}, name=f"lab-{name}", daemon=True)
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

    def count_failed_logon(self, server: str) -> None:
        """A request that presented credentials was refused on this server (badPwdCount at the domain controller)."""
        with self._state_lock:
            self.failed_logons[server] = self.failed_logons.get(server, 0) + 1

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
        kind, default = (
            ("runspace_quota", self.powershell_max_concurrency)
            if path == EXCHANGE_PATH
            else ("shell_quota", self.max_shells_per_user)
        )
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
