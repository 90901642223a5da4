"""The simulated organisation's state, and the only place where it changes.

Semantics follow ../shared/EXCHANGE-NOTES.md: component states per (component, requester) with the
"any requester Inactive wins" rule and the ServerWideOffline override; copies whose queues and
status drive Test-ReplicationHealth; transport queues including Submission, Poison and Shadow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagcheck.inventory import Inventory
from dagcheck.lab import certificates, products
from dagcheck.lab.clock import LabClock
from dagcheck.lab.products import Build
from dagcheck.lab.settings import Fault, lab_settings

SWO_EXEMPT = products.SWO_EXEMPT
DEFAULT_INACTIVE = products.DEFAULT_INACTIVE


@dataclass
class IisApplication:
    """One IIS application of a web site, as applicationHost.config describes it (<location path=...>)."""

    token_checking: str = "None"  # extendedProtection tokenChecking: None, Allow, Require
    ssl_flags: str = products.DEFAULT_SSL_FLAGS
    ip_allow: list[str] = field(default_factory=list)  # ipSecurity allow entries; non-empty means allowUnlisted=false
    cmdlet_token_checking: str | None = None  # what Get-*VirtualDirectory shows when it differs from IIS (a fault)
    # The virtual directory's own settings (AD and IIS), for the applications a Get-*VirtualDirectory cmdlet
    # describes: what an administrator configures and a CU can reset.
    internal_url: str | None = None
    external_url: str | None = None
    internal_auth: list[str] = field(default_factory=list)  # AuthenticationMethod names
    external_auth: list[str] = field(default_factory=list)


@dataclass
class LabReceiveConnector:
    """One receive connector of a server (Get-ReceiveConnector)."""

    name: str
    transport_role: str  # FrontendTransport or HubTransport
    bindings: list[str]
    auth_mechanism: str  # the [Flags] ToString: "Tls, Integrated, BasicAuth, BasicAuthRequireTLS, ExchangeServer"
    permission_groups: str
    remote_ip_ranges: list[str] = field(default_factory=lambda: ["::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                                                                 "0.0.0.0-255.255.255.255"])
    enabled: bool = True


@dataclass
class LabCertificate:
    """One certificate in the server's store as Get-ExchangeCertificate lists it."""

    thumbprint: str
    subject: str
    services: str  # AllowedServices ToString: "IMAP, POP, IIS, SMTP"
    not_after: dt.datetime
    raw: str = ""  # base64 of the DER certificate (Get-ExchangeCertificate's RawData); thumbprint is its SHA-1
    not_before: dt.datetime | None = None
    domains: list[str] = field(default_factory=list)  # CertificateDomains: the subject's CN and the SANs


@dataclass
class LabAuthConfig:
    """The organisation's OAuth configuration (Get-AuthConfig): which certificate signs server-to-server
    tokens now, and the one that takes over at NextCertificateEffectiveDate (Learn, Set-AuthConfig:
    -NewCertificateThumbprint, -NewCertificateEffectiveDate, -PublishCertificate)."""

    current_thumbprint: str
    next_thumbprint: str | None = None
    next_effective: dt.datetime | None = None
    previous_thumbprint: str | None = None


@dataclass
class RequesterEntry:
    state: str
    timestamp: dt.datetime


class _Changes:
    """A process-wide count of the writes that can start mail moving or services starting (a queue's count,
    stuck flag or type; a server's queues, redirect or pending starts). Organization.tick rescans the whole
    organisation only when it moved; otherwise it touches just the servers whose mail is in flight, so a
    call to a 300-server lab does not walk 300 servers' queues."""

    count = 0
    _numbers = itertools.count(1)

    @classmethod
    def bump(cls) -> None:
        # After the write itself, a fresh number each time (next() is atomic): whatever order two threads
        # store theirs in, a scan that ran before either stored sees a count it did not scan at.
        cls.count = next(cls._numbers)


def _counting_writes_to(*fields: str) -> Callable[[Any, str, object], None]:
    """A __setattr__ that counts a write to any of `fields` as a change (_Changes)."""
    watched = frozenset(fields)

    def __setattr__(self: Any, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name in watched:
            _Changes.bump()

    return __setattr__


@dataclass
class LabQueue:
    row_id: int
    queue_type: str  # Delivery, Submission, Poison, Unreachable, Shadow
    delivery_type: str
    next_hop: str
    message_count: int = 0
    status: str = "Ready"
    stuck: bool = False
    last_error: str | None = None

    __setattr__ = _counting_writes_to("message_count", "stuck", "queue_type")

    @property
    def moves(self) -> bool:
        """Delivers as lab time passes (Shadow copies go only when their primary has drained)."""
        return bool(self.message_count) and not self.stuck and self.queue_type not in ("Poison", "Shadow")

    def identity(self, server: str) -> str:
        if self.queue_type in ("Submission", "Poison", "Unreachable"):
            return f"{server}\\{self.queue_type}"
        if self.queue_type == "Shadow":
            return f"{server}\\Shadow\\{self.row_id}"
        return f"{server}\\{self.row_id}"


@dataclass
class LabServer:
    name: str
    fqdn: str
    site: str
    dag: str | None
    guid: uuid.UUID
    exsetup_version: Build
    admin_display_version: Build
    local_states: dict[str, dict[str, RequesterEntry]] = field(default_factory=dict)
    remote_states: dict[str, dict[str, RequesterEntry]] = field(default_factory=dict)
    activation_policy: str = "Unrestricted"
    move_now: bool = False
    services: dict[str, str] = field(default_factory=dict)
    cluster_state: str = "Up"
    iis: dict[tuple[str, str], IisApplication] = field(default_factory=dict)  # (web site, application)
    # Outlook Anywhere (the Rpc vdir) SSLOffloading: off on the lab's well-kept servers, as Extended Protection
    # needs it (Learn, Configure Windows Extended Protection; ExchangeExtendedProtectionManagement.ps1 refuses
    # to configure EP while it is on, CSS-Exchange #2033).
    ssl_offloading: bool = False
    # The Configuration Manager client, when installed: what CCM_ClientUtilities.DetermineIfRebootPending
    # answers ({"RebootPending": bool, "IsHardRebootPending": bool}); None: no client (the lab's default).
    ccm_client: dict[str, bool] | None = None
    receive_connectors: list[LabReceiveConnector] = field(default_factory=list)
    # After a restart: (when, service) in start order; each service is Stopped until its time (wall clock,
    # UTC, as the restart itself is: LabServer.reboot).
    pending_starts: list[tuple[dt.datetime, str]] = field(default_factory=list)
    certificates: list[LabCertificate] = field(default_factory=list)
    scp_uri: str | None = None
    site_scope: list[str] = field(default_factory=list)
    queues: list[LabQueue] = field(default_factory=list)
    next_row_id: int = 1000
    transport_available_at: dt.datetime | None = None
    redirect_target: str | None = None
    failing_replication_checks: set[str] = field(default_factory=set)
    # Host facts served through WinRS: registry keys (path -> value name -> (type, data)), volumes.
    registry: dict[str, dict[str, tuple[str, object]]] = field(default_factory=dict)
    volumes: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Managed Availability: (health set, monitor) -> when it turned Unhealthy; every other monitor is Healthy.
    unhealthy_monitors: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)
    # IIS: the web sites and application pools that are stopped (appcmd shows every other one Started).
    stopped_iis: set[str] = field(default_factory=set)
    # Services whose start type is not Automatic (every service the lab has starts Automatic on a real server).
    start_types: dict[str, str] = field(default_factory=dict)
    clock_offset: float = 0.0  # seconds the server's Windows clock is ahead of real time (Get-Date)

    __setattr__ = _counting_writes_to("queues", "redirect_target", "pending_starts")

    @property
    def in_flight(self) -> bool:
        """Whether lab time can change its queues: mail that moves, or a redirect (its Shadow copies elsewhere)."""
        return bool(self.redirect_target) or any(q.moves for q in self.queues)

    @property
    def dn(self) -> str:
        return (
            f"CN={self.name.upper()},CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),"
            "CN=Administrative Groups,CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=test"
        )

    @property
    def product(self) -> str:
        return products.product_of(self.exsetup_version)

    @property
    def components(self) -> tuple[str, ...]:
        return products.components(self.product)

    def install(self, build: Build) -> None:
        """Set the build as setup would: ExSetup.exe's version, and AdminDisplayVersion's CU build in AD."""
        self.exsetup_version = build
        self.admin_display_version = products.admin_display_version(build)

    def requester_states(self, component: str) -> dict[str, RequesterEntry]:
        """Per requester, the newer of the local (registry) and remote (AD) entry, as the product merges them."""
        merged = dict(self.remote_states.get(component, {}))
        for requester, entry in self.local_states.get(component, {}).items():
            if requester not in merged or entry.timestamp >= merged[requester].timestamp:
                merged[requester] = entry
        return merged

    def own_state(self, component: str) -> str:
        states = [e.state for e in self.requester_states(component).values()]
        if "Inactive" in states:
            return "Inactive"
        if "Draining" in states:
            return "Draining"
        if states:
            return "Active"
        return "Inactive" if component in DEFAULT_INACTIVE else "Active"

    def component_state(self, component: str) -> str:
        own = self.own_state(component)
        if component not in SWO_EXEMPT and self.own_state("ServerWideOffline") != "Active":
            return "Inactive"
        return own

    def queue_by_type(self, queue_type: str) -> LabQueue | None:
        return next((q for q in self.queues if q.queue_type == queue_type), None)


@dataclass
class LabCopy:
    server: str
    preference: int
    status: str = "Healthy"
    copy_queue: int = 0
    replay_queue: int = 0
    content_index: str = "NotApplicable"
    lag: str | None = None
    activation_suspended: bool = False
    error_message: str | None = None


@dataclass
class LabDatabase:
    name: str
    guid: uuid.UUID
    dag: str
    copies: list[LabCopy]
    active_server: str
    size_bytes: int = 159449088  # DatabaseSize with -Status (152.1 MB, the size in Shay Levy's sample)

    def copy_on(self, server: str) -> LabCopy | None:
        return next((c for c in self.copies if c.server.lower() == server.lower()), None)


@dataclass
class LabDag:
    name: str
    members: list[str]
    witness_server: str | None
    witness_directory: str | None
    witness_available: bool = True
    primary_active_manager: str = ""


def _guid(*parts: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, "dagcheck-lab:" + ":".join(parts))


class Organization:
    """The whole simulated organisation. One lock guards it: the WSMan server is multi-threaded."""

    object_shape: str = "remote"  # also the value for state files saved before the option existed

    def __init__(self, inventory: Inventory, clock: LabClock | None = None) -> None:
        self.clock = clock or LabClock()
        self.lock = threading.RLock()
        self.call_log: list[tuple[str, str, dict[str, object]]] = []
        self.runtime_faults: list[Fault] = []
        self.fault_hits: dict[int, int] = {}
        self.admin_account = "contoso\\dagcheck"
        spec = lab_settings(inventory)
        # "remote": objects as a /PowerShell client receives them (string forms); "live": the fixtures' shape.
        self.object_shape = spec.object_shape
        default_build = products.parse_build(spec.build) if spec.build else products.DEFAULT_BUILD
        self.sites = list(inventory.sites)
        self.servers: dict[str, LabServer] = {}
        t0 = self.clock.now() - dt.timedelta(days=30)
        # Certificates are judged by clients against real time, not the lab's clock: their dates are wall-clock.
        # Midnight of the day: two organisations built from one inventory on one day hold the same certificates.
        wall = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=30)
        auth = auth_certificate(wall)
        self.auth_config = LabAuthConfig(auth.thumbprint)
        for s in inventory.servers:
            build = products.parse_build(spec.builds[s.name.lower()]) if s.name.lower() in spec.builds else default_build
            server = LabServer(
                name=s.name, fqdn=s.fqdn, site=s.site, dag=s.dag, guid=_guid("server", s.name),
                exsetup_version=build, admin_display_version=products.admin_display_version(build),
            )
            for component in products.FUNCTIONAL_SEEDED:
                server.local_states[component] = {"Functional": RequesterEntry("Active", t0)}
                server.remote_states[component] = {"Functional": RequesterEntry("Active", t0)}
            server.services = {svc: "Running" for role in products.role_services(server.product).values() for svc in role}
            server.services["ClusSvc"] = "Running"
            expected = inventory.expectations.autodiscover.get(s.site)
            server.scp_uri = expected.uri if expected else f"https://{s.fqdn}/Autodiscover/Autodiscover.xml"
            server.site_scope = list(expected.site_scope) if expected else [s.site]
            server.iis = setup_iis(build)
            configure_vdirs(server)
            server.receive_connectors = default_receive_connectors(server.name)
            server.certificates = default_certificates(server, wall, auth)
            server.queues = [LabQueue(1, "Submission", "Undefined", "Submission")]
            server.registry = default_registry(build)
            server.volumes = {"C:": (96 * GIB, 160 * GIB), "D:": (700 * GIB, 1024 * GIB), "E:": (300 * GIB, 512 * GIB)}
            self.servers[s.name.lower()] = server
        self.dags: dict[str, LabDag] = {
            d.name.lower(): LabDag(
                name=d.name, members=list(d.members),
                witness_server=d.witness.server if d.witness else None,
                witness_directory=d.witness.directory if d.witness else None,
                primary_active_manager=d.members[0],
            )
            for d in inventory.dags
        }
        self.databases: dict[str, LabDatabase] = {}
        for db in spec.databases:
            dag = self.servers[db.copies[0].lower()].dag or ""
            copies = [
                # Exchange 2019 and SE report NotApplicable (the index lives in the database); 2016 Healthy.
                LabCopy(server=srv, preference=i + 1, lag=db.lagged.get(srv),
                        content_index="Healthy" if self.servers[srv.lower()].product.endswith("2016")
                        else "NotApplicable")
                for i, srv in enumerate(db.copies)
            ]
            copies[0].status = "Mounted"
            self.databases[db.name.lower()] = LabDatabase(db.name, _guid("db", db.name), dag, copies, db.copies[0])
        for server in self.servers.values():
            for db in self.databases.values():
                if db.active_server.lower() == server.name.lower():
                    server.queues.append(
                        LabQueue(server.next_row_id, "Delivery", "SmtpDeliveryToMailbox", db.name)
                    )
                    server.next_row_id += 1

    # ---- lookups -------------------------------------------------------------------------

    def server(self, name: str) -> LabServer:
        """A server by short name or FQDN, as Exchange's ServerIdParameter accepts either."""
        key = name.lower()
        if key in self.servers:
            return self.servers[key]
        for server in self.servers.values():
            if server.fqdn.lower() == key:
                return server
        raise KeyError(name)

    def dag_of(self, server: LabServer) -> LabDag | None:
        return self.dags.get((server.dag or "").lower())

    def databases_with_copy_on(self, server: str) -> list[LabDatabase]:
        return [db for db in self.databases.values() if db.copy_on(server)]

    def now(self) -> dt.datetime:
        return self.clock.now()

    # ---- state changes ---------------------------------------------------------------------

    def _flow(self) -> _Flow:
        """The servers a tick must touch; rescanned only after a write that can add one (see _Changes).
        Not saved with the state (persist.NOT_SAVED): a restored organisation rescans on its first tick."""
        flow: _Flow | None = getattr(self, "flow", None)
        if flow is None or flow.seen != _Changes.count:
            flow = self.flow = _Flow(_Changes.count, [s for s in self.servers.values() if s.in_flight],
                                     [s for s in self.servers.values() if s.pending_starts])
        return flow

    def start_due_services(self) -> None:
        """Services of a restarted server whose start time has come are Running (see schedule_restart)."""
        now = dt.datetime.now(dt.UTC)
        for server in self._flow().starting:
            while server.pending_starts and server.pending_starts[0][0] <= now:
                server.services[server.pending_starts.pop(0)[1]] = "Running"

    def schedule_restart(self, server: LabServer, down_seconds: float, step: float | None = None) -> list[str]:
        """A restart: the Exchange and cluster services are stopped now and start one after another once the
        server is back, in START_ORDER; the services the endpoint itself needs (W3Svc, WinRM, IISAdmin)
        are up as soon as it answers. Returns the start order."""
        order = [svc for svc in START_ORDER if svc in server.services] + sorted(
            svc for svc in server.services if svc not in START_ORDER and svc not in UP_AT_BOOT)
        back = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=down_seconds)
        step = SERVICE_START_STEP if step is None else step
        for svc in order:
            server.services[svc] = "Stopped"
        # Only Automatic services start with Windows: a Disabled (or Manual) one stays Stopped after the restart.
        order = [svc for svc in order if server.start_types.get(svc, "Automatic") == "Automatic"]
        server.pending_starts = [(back + dt.timedelta(seconds=step * (i + 1)), svc) for i, svc in enumerate(order)]
        return order

    def tick(self, seconds: float) -> None:
        """Let lab time pass: healthy queues deliver, redirected servers hand their mail to the target,
        and shadow copies held for a drained server are discarded. Stuck and Poison queues never move."""
        self.clock.advance(seconds)
        self.start_due_services()
        flow = self._flow()
        for server in flow.moving:
            rate = DELIVERY_RATE * (REDIRECT_SPEEDUP if server.redirect_target else 1)
            for q in server.queues:
                if q.moves:
                    _deliver(q, int(rate * seconds))
            drained = all(q.message_count == 0 for q in server.queues if q.queue_type not in ("Poison", "Shadow"))
            if server.redirect_target and drained:
                for other in self.servers.values():
                    for q in other.queues:
                        if q.queue_type == "Shadow" and q.message_count and q.next_hop.lower() == server.fqdn.lower():
                            _deliver(q, int(rate * seconds))
        # Delivery only lowers counts, which moves no other server into flight: drop the ones now at rest.
        flow.moving = [server for server in flow.moving if server.in_flight]

    def set_component_state(self, server: LabServer, component: str, requester: str, state: str) -> None:
        """Timestamps are distinct and ordered by real call order across every client of the lab (the lease
        of concurrent dagcheck runs depends on it): a change at the same lab time as the last one is
        stamped one microsecond after it."""
        with self.lock:
            stamp = self.now()
            last = getattr(self, "last_component_stamp", None)
            if last is not None and stamp <= last:
                stamp = last + dt.timedelta(microseconds=1)
            self.last_component_stamp = stamp
            server.local_states.setdefault(component, {})[requester] = RequesterEntry(state, stamp)
            server.remote_states.setdefault(component, {})[requester] = RequesterEntry(state, stamp)

    def add_queue(self, server: LabServer, queue_type: str, delivery_type: str, next_hop: str) -> LabQueue:
        queue = LabQueue(server.next_row_id, queue_type, delivery_type, next_hop)
        server.next_row_id += 1
        server.queues.append(queue)
        _Changes.bump()  # appending is no attribute write
        return queue

    def quorum(self, dag_name: str) -> tuple[int, int, bool]:
        """(votes present, total votes, witness in use) for a DAG's cluster; Paused nodes still vote."""
        dag = self.dags[dag_name.lower()]
        members = [self.server(m) for m in dag.members]
        witness = dag.witness_server is not None and len(members) % 2 == 0
        total = len(members) + (1 if witness else 0)
        present = sum(1 for m in members if m.cluster_state in ("Up", "Paused")) + (
            1 if witness and dag.witness_available else 0
        )
        return present, total, witness

    def healthy_for_activation(self, copy: LabCopy, exclude: str | None) -> bool:
        server = self.server(copy.server)
        return (
            copy.server.lower() != (exclude or "").lower()
            and copy.status in ("Healthy", "DisconnectedAndHealthy")
            and not copy.activation_suspended
            and copy.lag is None
            and server.activation_policy != "Blocked"
            and server.cluster_state == "Up"
            and server.services.get("MSExchangeIS") == "Running"
        )

    def best_activation_target(self, db: LabDatabase, exclude: str | None = None) -> LabCopy | None:
        """What Active Manager's best-copy selection would pick, simplified: healthy copies, shortest queues,
        then activation preference."""
        candidates = [c for c in db.copies if self.healthy_for_activation(c, exclude)]
        candidates.sort(key=lambda c: (c.copy_queue + c.replay_queue, c.preference))
        return candidates[0] if candidates else None

    def switchover(self, db: LabDatabase, target: LabCopy) -> None:
        old = db.copy_on(db.active_server)
        if old is not None:
            old.status = "Healthy"
        target.status = "Mounted"
        target.copy_queue = target.replay_queue = 0
        previous = self.server(db.active_server)
        self.tick(15)  # a switchover takes lab time
        db.active_server = target.server
        # The delivery queue for the database follows it to its new host.
        for q in list(previous.queues):
            if q.queue_type == "Delivery" and q.next_hop.lower() == db.name.lower() and not q.stuck:
                previous.queues.remove(q)
        new = self.server(target.server)
        if not any(q.queue_type == "Delivery" and q.next_hop.lower() == db.name.lower() for q in new.queues):
            self.add_queue(new, "Delivery", "SmtpDeliveryToMailbox", db.name)

    def move_active_databases_off(self, server: LabServer) -> None:
        """What DatabaseCopyActivationDisabledAndMoveNow does at once: every active copy moves to the best
        healthy copy on a server that is not Blocked (none with the databases_wont_move fault)."""
        if self.faults_matching("databases_wont_move", server.name):
            return
        for db in self.databases.values():
            if db.active_server.lower() == server.name.lower():
                target = self.best_activation_target(db, exclude=server.name)
                if target is not None:
                    self.switchover(db, target)

    def faults_matching(self, kind: str, server: str, cmdlet: str | None = None) -> list[Fault]:
        """Runtime faults of a kind that apply to this server (and cmdlet); no server/cmdlet in a fault means all."""
        return [
            f for f in self.runtime_faults
            if f.kind == kind
            and (not f.get("server") or f.get("server").lower() == server.lower())
            and (cmdlet is None or not f.get("cmdlet") or f.get("cmdlet").lower() == cmdlet.lower())
        ]


@dataclass
class _Flow:
    seen: int  # _Changes.count when the servers were scanned
    moving: list[LabServer]  # mail in flight, or redirecting
    starting: list[LabServer]  # services waiting to start after a restart


def _deliver(queue: LabQueue, messages: int) -> None:
    """Lower a queue's count as delivery does, without counting it as a change that needs a rescan."""
    object.__setattr__(queue, "message_count", max(0, queue.message_count - messages))


# Lab time each cmdlet call takes, and how fast queues deliver: polling makes time pass, so waits
# progress deterministically without real sleeps.
TICK_SECONDS = 5.0
DELIVERY_RATE = 2  # messages per second per queue
REDIRECT_SPEEDUP = 5
GIB = 1024**3
# After a restart: the cluster service, then AD Topology (on which the other Exchange services depend),
# the service host, the store and replication, then transport; the rest after them by name. The order
# follows the services' documented dependencies on MSExchangeADTopology; the exact order and the
# SERVICE_START_STEP pace are the lab's (guessed).
START_ORDER = ("ClusSvc", "MSExchangeADTopology", "MSExchangeServiceHost", "MSExchangeIS", "MSExchangeRepl",
               "MSExchangeDagMgmt", "MSExchangeTransport", "MSExchangeFrontEndTransport")
UP_AT_BOOT = ("W3Svc", "WinRM", "IISAdmin")
SERVICE_START_STEP = 0.1  # seconds between two services starting (lab pace; real ones take longer)
NDP_FULL = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full"
SESSION_MANAGER = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"
WINDOWS_NT = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion"
# Keys whose existence means a reboot is pending (Windows servicing, Windows Update, Exchange setup).
REBOOT_KEYS = {
    "cbs": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootPending",
    "windows_update": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\RebootRequired",
    "exchange_setup": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\UpdateExeVolatile",
}


def default_registry(build: Build | None = None) -> dict[str, dict[str, tuple[str, object]]]:
    """No reboot pending; Windows and .NET Framework as the lab's administrator installed them for the build
    (Learn, Exchange Server supportability matrix): Exchange 2016 on Windows Server 2016 with .NET 4.8
    (release 528049, "all other Windows operating systems" in Learn's "Determine which .NET Framework versions
    are installed"), Exchange 2019 before CU12 on Windows Server 2019 with 4.8 (528049), later 2019 and SE on
    Windows Server 2022 with 4.8.1 (533325)."""
    release, version, windows, product = 533325, "4.8.09032", "20348", "Windows Server 2022 Datacenter"
    if build is not None and build[:2] == (15, 1):
        release, version, windows, product = 528049, "4.8.03761", "14393", "Windows Server 2016 Datacenter"
    elif build is not None and build[:2] == (15, 2) and build[2] < 1118:
        release, version, windows, product = 528049, "4.8.03761", "17763", "Windows Server 2019 Datacenter"
    return {
        NDP_FULL: {"Release": ("REG_DWORD", release), "Version": ("REG_SZ", version), "Install": ("REG_DWORD", 1)},
        WINDOWS_NT: {"CurrentBuildNumber": ("REG_SZ", windows), "ProductName": ("REG_SZ", product)},
        SESSION_MANAGER: {"BootExecute": ("REG_MULTI_SZ", ["autocheck autochk *"])},
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing": {},
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update": {},
        **tls_registry(),
    }


SCHANNEL_PROTOCOLS = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols"
DOTNET_TLS_KEYS = tuple(f"HKEY_LOCAL_MACHINE\\SOFTWARE\\{wow}Microsoft\\.NETFramework\\{v}"
                        for v in ("v4.0.30319", "v2.0.50727") for wow in ("", "Wow6432Node\\"))


def tls_registry() -> dict[str, dict[str, tuple[str, object]]]:
    """TLS as Microsoft's guidance leaves it (Learn, "Exchange Server TLS configuration best practices"): TLS 1.0
    and 1.1 off, TLS 1.2 on, for Server and Client; .NET 4 and 2 use the system's TLS versions and strong crypto."""
    keys: dict[str, dict[str, tuple[str, object]]] = {SCHANNEL_PROTOCOLS: {}}
    for version, on in (("TLS 1.0", False), ("TLS 1.1", False), ("TLS 1.2", True)):
        keys[f"{SCHANNEL_PROTOCOLS}\\{version}"] = {}
        for side in ("Server", "Client"):
            keys[f"{SCHANNEL_PROTOCOLS}\\{version}\\{side}"] = {
                "Enabled": ("REG_DWORD", 1 if on else 0), "DisabledByDefault": ("REG_DWORD", 0 if on else 1)}
    for key in DOTNET_TLS_KEYS:
        keys[key] = {"SystemDefaultTlsVersions": ("REG_DWORD", 1), "SchUseStrongCrypto": ("REG_DWORD", 1)}
    return keys


def setup_iis(build: Build) -> dict[tuple[str, str], IisApplication]:
    """The IIS applications of both web sites with the Extended Protection and SSL settings setup leaves:
    EP as Microsoft documents it on builds whose setup enables it or that the administrator configured
    (products.extended_protection_on), otherwise None everywhere."""
    enabled = products.extended_protection_on(build)
    return {
        (site, app): IisApplication(
            token_checking=token if enabled else "None",
            ssl_flags=products.SETUP_SSL_FLAGS.get((site, app), products.DEFAULT_SSL_FLAGS),
        )
        for site, apps in products.SETUP_EP.items()
        for app, token in apps.items()
    }


# The vdirs the Get-*VirtualDirectory cmdlets describe, and the lab administrator's external namespace
# (mail.<domain>) on the ones clients reach from outside.
CMDLET_VDIRS = frozenset(products.VDIR_CMDLETS.values())
EXTERNAL_VDIRS = ("owa", "ecp", "EWS", "OAB", "Microsoft-Server-ActiveSync", "mapi")
# Authentication methods of the front end (cmdlet view): owa's are CSS-Exchange's GetOwaVirtualDirectory.xml
# (Internal Basic, Fba; External Fba); ecp is assumed to match owa. Microsoft-Server-ActiveSync: Basic, and
# Autodiscover: Basic and Windows (Learn, "Default settings for Exchange virtual directories"; IIS's Windows
# authentication shows as Ntlm, WindowsIntegrated); Autodiscover and EWS also accept WSSecurity (their
# -WSSecurityAuthentication, $true by default: an Exchange 2010 Get-AutodiscoverVirtualDirectory output shows
# {Basic, Ntlm, WindowsIntegrated, WSSecurity}) and OAuth (guessed default). PowerShell's front end
# authenticates with Kerberos only (setup enables neither Basic nor Windows there; ExchangeDsc's example turns
# Windows on by hand): shown as Kerberos, guessed. The rest (mapi, OAB) keep Ntlm, WindowsIntegrated, OAuth.
_EWS_LIKE = ["Ntlm", "WindowsIntegrated", "WSSecurity", "OAuth"]
VDIR_AUTH = {
    "owa": (["Basic", "Fba"], ["Fba"]), "ecp": (["Basic", "Fba"], ["Fba"]),
    "Microsoft-Server-ActiveSync": (["Basic"], ["Basic"]),
    "Autodiscover": (["Basic", *_EWS_LIKE], ["Basic", *_EWS_LIKE]),
    "EWS": (_EWS_LIKE, _EWS_LIKE),
    "PowerShell": (["Kerberos"], ["Kerberos"]),
}
OTHER_AUTH = (["Ntlm", "WindowsIntegrated", "OAuth"], ["Ntlm", "WindowsIntegrated", "OAuth"])


def configure_vdirs(server: LabServer) -> None:
    """URLs and authentication as the lab's administrator set them after setup: the server's FQDN inside,
    the organisation's namespace outside (front end only; the back end has no URLs)."""
    domain = server.fqdn.split(".", 1)[1] if "." in server.fqdn else server.fqdn
    for (site, app), a in server.iis.items():
        if app not in CMDLET_VDIRS or site != products.FRONT_END:
            continue
        a.internal_url = f"https://{server.fqdn}/{app}"
        a.external_url = f"https://mail.{domain}/{app}" if app in EXTERNAL_VDIRS else None
        internal, external = VDIR_AUTH.get(app, OTHER_AUTH)
        a.internal_auth, a.external_auth = list(internal), list(external)


def default_receive_connectors(name: str) -> list[LabReceiveConnector]:
    """The five receive connectors setup creates on an Exchange 2016/2019/SE Mailbox server. Names, roles
    and ports are Microsoft Learn's "Default Receive connectors created during setup"; the AuthMechanism
    and PermissionGroups values are from memory of that page and of Get-ReceiveConnector output, not
    from a capture here (guessed in their details)."""
    n = name.upper()
    both = "Tls, Integrated, BasicAuth, BasicAuthRequireTLS, ExchangeServer"
    return [
        # Learn's table offers Basic authentication on "Default <Server>" without "only after starting TLS":
        # no BasicAuthRequireTLS there.
        LabReceiveConnector(f"Default {n}", "HubTransport", ["0.0.0.0:2525", "[::]:2525"],
                            "Tls, Integrated, BasicAuth, ExchangeServer",
                            "ExchangeUsers, ExchangeServers, ExchangeLegacyServers"),
        LabReceiveConnector(f"Client Proxy {n}", "HubTransport", ["0.0.0.0:465", "[::]:465"], both,
                            "ExchangeUsers, ExchangeServers"),
        LabReceiveConnector(f"Default Frontend {n}", "FrontendTransport", ["0.0.0.0:25", "[::]:25"], both,
                            "AnonymousUsers, ExchangeServers, ExchangeLegacyServers"),
        LabReceiveConnector(f"Outbound Proxy Frontend {n}", "FrontendTransport", ["0.0.0.0:717", "[::]:717"], both,
                            "ExchangeServers"),
        LabReceiveConnector(f"Client Frontend {n}", "FrontendTransport", ["0.0.0.0:587", "[::]:587"],
                            "Tls, Integrated, BasicAuth, BasicAuthRequireTLS", "ExchangeUsers"),
    ]


def default_certificates(server: LabServer, issued: dt.datetime, auth: LabCertificate) -> list[LabCertificate]:
    """The lab administrator's SAN certificate bound to IIS and SMTP, setup's self-signed one (five years,
    SMTP once the SAN certificate took IIS), and the organisation's Auth certificate: real X.509
    certificates (dagcheck.lab.certificates) whose thumbprints are their SHA-1, as Windows shows them."""
    domain = server.fqdn.split(".", 1)[1] if "." in server.fqdn else server.fqdn
    san = lab_certificate(f"mail.{domain}", [f"mail.{domain}", f"autodiscover.{domain}"], "IMAP, POP, IIS, SMTP",
                          issued, issued + dt.timedelta(days=700))
    own = lab_certificate(server.name.upper(), [server.name.upper(), server.fqdn], "SMTP", issued,
                          issued + dt.timedelta(days=5 * 365))
    return [san, own, dataclasses.replace(auth, domains=list(auth.domains))]


def lab_certificate(common_name: str, sans: list[str], services: str, not_before: dt.datetime,
                    not_after: dt.datetime) -> LabCertificate:
    thumbprint, raw = certificates.make(common_name, sans, not_before, not_after)
    return LabCertificate(thumbprint, f"CN={common_name}", services, not_after, raw, not_before,
                          list(dict.fromkeys([common_name, *sans])))


def auth_certificate(issued: dt.datetime, not_after: dt.datetime | None = None) -> LabCertificate:
    """The Microsoft Exchange Server Auth Certificate: no SANs, five years, the same on every server."""
    return lab_certificate(certificates.AUTH_SUBJECT.removeprefix("CN="), [], "SMTP", issued,
                           not_after or issued + dt.timedelta(days=5 * 365))


