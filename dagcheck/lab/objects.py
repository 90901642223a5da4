"""The simulated organisation's objects: servers, copies, databases, DAGs, queues, IIS and certificates.

Plain data the organisation (dagcheck.lab.state.Organization) holds and changes; a write that can start
mail moving or services starting is counted (_Changes) so that a tick rescans only when one happened.
Semantics follow ../shared/EXCHANGE-NOTES.md: component states per (component, requester) with the "any
requester Inactive wins" rule and the ServerWideOffline override.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagcheck.lab import products
from dagcheck.lab.products import Build

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
    remote_ip_ranges: list[str] = field(
        default_factory=lambda: ["::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0.0.0.0-255.255.255.255"]
    )
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
