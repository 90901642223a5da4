"""The simulated organisation's state, and the only place where it changes.

Semantics follow ../shared/EXCHANGE-NOTES.md: component states per (component, requester) with the
"any requester Inactive wins" rule and the ServerWideOffline override; copies whose queues and
status drive Test-ReplicationHealth; transport queues including Submission, Poison and Shadow.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field

from dagcheck.facts import ROLE_SERVICES
from dagcheck.inventory import Fault, Inventory
from dagcheck.lab.clock import LabClock
from dagcheck.rules.builds import cu_of

# Components as listed by a real Exchange 2019 server (fixture GetServerComponentState.xml), in order.
COMPONENTS = (
    "ServerWideOffline", "HubTransport", "FrontendTransport", "Monitoring", "RecoveryActionsEnabled",
    "AutoDiscoverProxy", "ActiveSyncProxy", "EcpProxy", "EwsProxy", "ImapProxy", "OabProxy", "OwaProxy",
    "PopProxy", "PushNotificationsProxy", "RpsProxy", "RwsProxy", "RpcProxy", "XropProxy",
    "HttpProxyAvailabilityGroup", "ForwardSyncDaemon", "ProvisioningRps", "MapiProxy", "EdgeTransport",
    "HighAvailability", "SharedCache", "MailboxDeliveryProxy", "RoutingUpdates", "RestProxy", "DefaultProxy",
    "Lsass", "RoutingService", "E4EProxy", "CafeLAMv2", "LogExportProvider",
)
# Inactive by default on premises (product default-state table; both E16/E19 fixtures).
DEFAULT_INACTIVE = frozenset({"ForwardSyncDaemon", "ProvisioningRps"})
# Not switched off by ServerWideOffline.
SWO_EXEMPT = frozenset({"ServerWideOffline", "Monitoring", "RecoveryActionsEnabled"})
# Components that carry a Functional requester entry on a fresh server (as in the E19 fixture).
FUNCTIONAL_SEEDED = ("ServerWideOffline", "Monitoring", "RecoveryActionsEnabled")
REQUESTERS = ("HealthApi", "Maintenance", "Sidelined", "Functional", "Deployment")

SERVICE_DISPLAY_NAMES = {
    "MSExchangeTransport": "Microsoft Exchange Transport",
    "MSExchangeIS": "Microsoft Exchange Information Store",
    "MSExchangeRepl": "Microsoft Exchange Replication",
    "MSExchangeADTopology": "Microsoft Exchange Active Directory Topology",
    "ClusSvc": "Cluster Service",
    "W3Svc": "World Wide Web Publishing Service",
    "WinRM": "Windows Remote Management (WS-Management)",
}

# Virtual directories that the Get-*VirtualDirectory cmdlets return, per site (FE, BE).
VDIRS = {
    "Get-OwaVirtualDirectory": "owa",
    "Get-EcpVirtualDirectory": "ecp",
    "Get-WebServicesVirtualDirectory": "EWS",
    "Get-AutodiscoverVirtualDirectory": "Autodiscover",
    "Get-MapiVirtualDirectory": "mapi",
    "Get-OabVirtualDirectory": "OAB",
    "Get-ActiveSyncVirtualDirectory": "Microsoft-Server-ActiveSync",
    "Get-PowerShellVirtualDirectory": "PowerShell",
}
WEB_SITES = ("Default Web Site", "Exchange Back End")


@dataclass
class RequesterEntry:
    state: str
    timestamp: dt.datetime


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
    admin_display_version: tuple[int, int, int, int]
    exsetup_version: tuple[int, int, int, int]
    local_states: dict[str, dict[str, RequesterEntry]] = field(default_factory=dict)
    remote_states: dict[str, dict[str, RequesterEntry]] = field(default_factory=dict)
    activation_policy: str = "Unrestricted"
    move_now: bool = False
    services: dict[str, str] = field(default_factory=dict)
    cluster_state: str = "Up"
    vdir_tokens: dict[str, str] = field(default_factory=dict)  # "owa (Default Web Site)" -> None/Allow/Require
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

    @property
    def dn(self) -> str:
        return (
            f"CN={self.name.upper()},CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),"
            "CN=Administrative Groups,CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=test"
        )

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


def _version(build: str) -> tuple[int, int, int, int]:
    a, b, c, d = (int(p) for p in build.split("."))
    return a, b, c, d


def _guid(*parts: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, "dagcheck-lab:" + ":".join(parts))


class Organization:
    """The whole simulated organisation. One lock guards it: the WSMan server is multi-threaded."""

    def __init__(self, inventory: Inventory, clock: LabClock | None = None) -> None:
        self.clock = clock or LabClock()
        self.lock = threading.RLock()
        self.call_log: list[tuple[str, str, dict[str, object]]] = []
        self.runtime_faults: list[Fault] = []
        self.fault_hits: dict[int, int] = {}
        self.admin_account = "contoso\\dagcheck"
        spec = inventory.lab
        build = _version(spec.build if spec else "15.2.1544.44")
        # AdminDisplayVersion shows the CU's own build; ExSetup.exe carries the SU revision.
        cu = cu_of(build)
        admin_version = cu.cu_build if cu else build
        self.sites = list(inventory.sites)
        self.servers: dict[str, LabServer] = {}
        t0 = self.clock.now() - dt.timedelta(days=30)
        for s in inventory.servers:
            server = LabServer(
                name=s.name, fqdn=s.fqdn, site=s.site, dag=s.dag, guid=_guid("server", s.name),
                admin_display_version=admin_version, exsetup_version=build,
            )
            for component in FUNCTIONAL_SEEDED:
                server.local_states[component] = {"Functional": RequesterEntry("Active", t0)}
                server.remote_states[component] = {"Functional": RequesterEntry("Active", t0)}
            server.services = {svc: "Running" for role in ROLE_SERVICES.values() for svc in role}
            server.services["ClusSvc"] = "Running"
            expected = inventory.expectations.autodiscover.get(s.site)
            server.scp_uri = expected.uri if expected else f"https://{s.fqdn}/Autodiscover/Autodiscover.xml"
            server.site_scope = list(expected.site_scope) if expected else [s.site]
            server.vdir_tokens = default_ep_tokens(build)
            server.queues = [LabQueue(1, "Submission", "Undefined", "Submission")]
            server.registry = default_registry()
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
        for db in spec.databases if spec else ():
            dag = self.servers[db.copies[0].lower()].dag or ""
            copies = [
                LabCopy(server=srv, preference=i + 1, lag=db.lagged.get(srv),
                        content_index="NotApplicable" if build[1] >= 2 else "Healthy")
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
        from dagcheck.lab.faults import apply_fault  # faults act on a built organisation

        for fault in spec.faults if spec else ():
            apply_fault(self, fault)

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

    def tick(self, seconds: float) -> None:
        """Let lab time pass: healthy queues deliver, redirected servers hand their mail to the target,
        and shadow copies held for a drained server are discarded. Stuck and Poison queues never move."""
        self.clock.advance(seconds)
        for server in self.servers.values():
            rate = DELIVERY_RATE * (REDIRECT_SPEEDUP if server.redirect_target else 1)
            for q in server.queues:
                if q.message_count and not q.stuck and q.queue_type not in ("Poison", "Shadow"):
                    q.message_count = max(0, q.message_count - int(rate * seconds))
            drained = all(q.message_count == 0 for q in server.queues if q.queue_type not in ("Poison", "Shadow"))
            if server.redirect_target and drained:
                for other in self.servers.values():
                    for q in other.queues:
                        if q.queue_type == "Shadow" and q.next_hop.lower() == server.fqdn.lower():
                            q.message_count = max(0, q.message_count - int(rate * seconds))

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


# Lab time each cmdlet call takes, and how fast queues deliver: polling makes time pass, so waits
# progress deterministically without real sleeps.
TICK_SECONDS = 5.0
DELIVERY_RATE = 2  # messages per second per queue
REDIRECT_SPEEDUP = 5
GIB = 1024**3
NDP_FULL = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full"
SESSION_MANAGER = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"
# Keys whose existence means a reboot is pending (Windows servicing, Windows Update, Exchange setup).
REBOOT_KEYS = {
    "cbs": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootPending",
    "windows_update": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\RebootRequired",
    "exchange_setup": "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\UpdateExeVolatile",
}


def default_registry() -> dict[str, dict[str, tuple[str, object]]]:
    """.NET Framework 4.8.1 (release 533325 on Server 2022), no reboot pending."""
    return {
        NDP_FULL: {"Release": ("REG_DWORD", 533325), "Version": ("REG_SZ", "4.8.09032"), "Install": ("REG_DWORD", 1)},
        SESSION_MANAGER: {"BootExecute": ("REG_MULTI_SZ", ["autocheck autochk *"])},
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing": {},
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update": {},
    }


def default_ep_tokens(build: tuple[int, int, int, int]) -> dict[str, str]:
    """Extended Protection as Exchange 2019 CU14+ setup configures it (Microsoft's matrix), else None."""
    from dagcheck.rules.extended_protection import expected_token_checking, supports_extended_protection

    tokens = {}
    for vdir in VDIRS.values():
        for site in WEB_SITES:
            name = f"{vdir} ({site})"
            if build >= (15, 2, 1544, 0) and supports_extended_protection(build):
                tokens[name] = expected_token_checking(vdir, site) or "None"
            else:
                tokens[name] = "None"
    return tokens
