"""The simulated organisation's state, and the only place where it changes.

Semantics follow ../shared/EXCHANGE-NOTES.md: component states per (component, requester) with the
"any requester Inactive wins" rule and the ServerWideOffline override; copies whose queues and
status drive Test-ReplicationHealth; transport queues including Submission, Poison and Shadow.
The objects it holds are in dagcheck.lab.objects; what a new server looks like, in dagcheck.lab.defaults.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass

from dagcheck.inventory import Inventory
from dagcheck.lab import products
from dagcheck.lab.clock import LabClock
from dagcheck.lab.defaults import (
    auth_certificate,
    configure_vdirs,
    default_certificates,
    default_receive_connectors,
    default_registry,
    setup_iis,
)
from dagcheck.lab.objects import (
    LabAuthConfig,
    LabCopy,
    LabDag,
    LabDatabase,
    LabQueue,
    LabServer,
    RequesterEntry,
    _Changes,
)
from dagcheck.lab.settings import Fault, lab_settings


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
                name=s.name,
                fqdn=s.fqdn,
                site=s.site,
                dag=s.dag,
                guid=_guid("server", s.name),
                exsetup_version=build,
                admin_display_version=products.admin_display_version(build),
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
                name=d.name,
                members=list(d.members),
                witness_server=d.witness.server if d.witness else None,
                witness_directory=d.witness.directory if d.witness else None,
                primary_active_manager=d.members[0],
            )
            for d in inventory.dags
        }
        self.databases: dict[str, LabDatabase] = {}
        for layout in spec.databases:
            dag = self.servers[layout.copies[0].lower()].dag or ""
            copies = [
                # Exchange 2019 and SE report NotApplicable (the index lives in the database); 2016 Healthy.
                LabCopy(
                    server=srv,
                    preference=i + 1,
                    lag=layout.lagged.get(srv),
                    content_index="Healthy" if self.servers[srv.lower()].product.endswith("2016") else "NotApplicable",
                )
                for i, srv in enumerate(layout.copies)
            ]
            copies[0].status = "Mounted"
            self.databases[layout.name.lower()] = LabDatabase(
                layout.name, _guid("db", layout.name), dag, copies, layout.copies[0]
            )
        for server in self.servers.values():
            for db in self.databases.values():
                if db.active_server.lower() == server.name.lower():
                    server.queues.append(LabQueue(server.next_row_id, "Delivery", "SmtpDeliveryToMailbox", db.name))
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
            flow = self.flow = _Flow(
                _Changes.count,
                [s for s in self.servers.values() if s.in_flight],
                [s for s in self.servers.values() if s.pending_starts],
            )
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
            svc for svc in server.services if svc not in START_ORDER and svc not in UP_AT_BOOT
        )
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
        present = sum(1 for m in members if m.cluster_state in ("Up", "Paused")) + (1 if witness and dag.witness_available else 0)
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
            f
            for f in self.runtime_faults
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
START_ORDER = (
    "ClusSvc",
    "MSExchangeADTopology",
    "MSExchangeServiceHost",
    "MSExchangeIS",
    "MSExchangeRepl",
    "MSExchangeDagMgmt",
    "MSExchangeTransport",
    "MSExchangeFrontEndTransport",
)
UP_AT_BOOT = ("W3Svc", "WinRM", "IISAdmin")
SERVICE_START_STEP = 0.1  # seconds between two services starting (lab pace; real ones take longer)
