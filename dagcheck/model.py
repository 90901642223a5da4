"""Typed views of what the cmdlets return, built from deserialized objects (dagcheck.clixml).

Over remote PowerShell, top-level enums keep their ToString and integer, nested ones degrade to
strings, monitoring results arrive as localized ToString, and enums unknown to the calling shell
arrive as bare integers (EXCHANGE-NOTES.md §5). The parsers accept all of these forms.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

# Integers seen for enum values when the calling shell does not know the enum (§5).
CONTENT_INDEX_BY_INT = {0: "Unknown", 1: "Healthy", 2: "Crawling", 3: "Failed", 4: "Seeding", 5: "FailedAndSuspended",
                        6: "Suspended", 7: "Disabled", 8: "AutoSuspended", 9: "HealthyAndUpgrading", 11: "NotApplicable"}
SERVICE_STATE_BY_INT = {0: "Inactive", 1: "Active", 3: "Draining"}
COPY_STATUS_BY_INT = {0: "Unknown", 3: "Failed", 4: "Seeding", 5: "Suspended", 6: "Healthy", 7: "ServiceDown",
                      8: "Initializing", 9: "Resynchronizing", 11: "Mounted", 12: "Dismounted", 13: "Mounting",
                      14: "Dismounting", 15: "DisconnectedAndHealthy", 16: "FailedAndSuspended",
                      17: "DisconnectedAndResynchronizing", 18: "NonExchangeReplication", 19: "SeedingSource",
                      20: "Misconfigured"}
QUEUE_STATUS_BY_INT = {0: "None", 1: "Active", 2: "Ready", 3: "Retry", 4: "Suspended", 5: "Connecting"}
ACTIVATION_POLICY_BY_INT = {0: "Unrestricted", 1: "IntrasiteOnly", 2: "Blocked"}
# Localized ToString of ReplicationCheckResult (English and German seen in the field; Checkmk).
REPLICATION_RESULTS = {
    "passed": "Passed", "prüfung bestanden": "Passed",
    "*failed*": "Failed", "failed": "Failed", "*fehler*": "Failed", "fehler": "Failed",
    "*warning*": "Warning", "warning": "Warning", "*warnung*": "Warning", "warnung": "Warning",
    "undefined": "Undefined",
}


def prop(obj: Any, name: str, default: Any = None) -> Any:
    """A property of a deserialized object (adapted or extended), or default when absent."""
    meta = getattr(obj, "PSObject", None)
    if meta is None:
        return default
    for p in (*meta.adapted_properties, *meta.extended_properties):
        if p.name == name:
            return p.get_value(obj)
    return default


def text(value: Any) -> str | None:
    return None if value is None else str(value)


def enum_name(value: Any, by_int: dict[int, str] | None = None) -> str | None:
    """An enum's name whether it arrived as an enum object, its ToString, or a bare integer."""
    if value is None:
        return None
    meta = getattr(value, "PSObject", None)
    is_enum = meta is not None and any(t.endswith("System.Enum") for t in getattr(meta, "type_names", []))
    if isinstance(value, int) and not isinstance(value, bool) and not is_enum and by_int is not None:
        return by_int.get(int(value), str(int(value)))
    to_string = getattr(meta, "to_string", None) if meta is not None else None
    return str(to_string) if to_string else str(value)


def strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def short_name(value: Any) -> str:
    """Server names: Exchange returns upper-case NetBIOS names or FQDNs; compare short, lower-case."""
    return str(value or "").split(".", 1)[0].lower()


@dataclass(frozen=True)
class RequesterState:
    requester: str
    state: str
    timestamp: dt.datetime | None


@dataclass(frozen=True)
class ComponentState:
    server: str
    component: str
    state: str
    local: tuple[RequesterState, ...]
    remote: tuple[RequesterState, ...]

    @property
    def key(self) -> str:
        return f"{self.server}:{self.component}"

    def requesters(self, state: str) -> tuple[str, ...]:
        """Requesters that hold the component in the given state, from either store."""
        return tuple(sorted({r.requester for r in (*self.local, *self.remote) if r.state == state}))


def _requesters(value: Any) -> tuple[RequesterState, ...]:
    out = []
    for r in value or ():
        stamp = prop(r, "Timestamp")
        out.append(RequesterState(str(prop(r, "Requester", "")), enum_name(prop(r, "State"), SERVICE_STATE_BY_INT) or "",
                                  stamp if isinstance(stamp, dt.datetime) else None))
    return tuple(out)


def parse_component_state(obj: Any, server: str | None = None) -> ComponentState:
    return ComponentState(
        server=short_name(server or prop(obj, "ServerFqdn")),
        component=str(prop(obj, "Component")),
        state=enum_name(prop(obj, "State"), SERVICE_STATE_BY_INT) or "Unknown",
        local=_requesters(prop(obj, "LocalStates")),
        remote=_requesters(prop(obj, "RemoteStates")),
    )


@dataclass(frozen=True)
class DatabaseCopyStatus:
    database: str
    server: str
    status: str
    active: bool
    activation_preference: int | None
    copy_queue: int
    replay_queue: int
    content_index: str
    activation_suspended: bool
    lagged: bool
    error_message: str | None

    @property
    def key(self) -> str:
        return f"{self.database}\\{self.server}"


def parse_copy_status(obj: Any) -> DatabaseCopyStatus:
    name = str(prop(obj, "Name") or prop(obj, "Identity") or "")
    db, _, server = name.partition("\\")
    lag = str(prop(obj, "ReplayLagStatus") or "")
    return DatabaseCopyStatus(
        database=str(prop(obj, "DatabaseName") or db),
        server=short_name(prop(obj, "MailboxServer") or server),
        status=enum_name(prop(obj, "Status"), COPY_STATUS_BY_INT) or "Unknown",
        active=bool(prop(obj, "ActiveCopy", False)),
        activation_preference=prop(obj, "ActivationPreference"),
        copy_queue=int(prop(obj, "CopyQueueLength") or 0),
        replay_queue=int(prop(obj, "ReplayQueueLength") or 0),
        content_index=enum_name(prop(obj, "ContentIndexState"), CONTENT_INDEX_BY_INT) or "Unknown",
        activation_suspended=bool(prop(obj, "ActivationSuspended", False)),
        lagged=lag.replace(" ", "").lower().startswith("enabled:true"),
        error_message=text(prop(obj, "ErrorMessage")),
    )


@dataclass(frozen=True)
class QueueInfo:
    identity: str
    server: str
    delivery_type: str
    next_hop: str
    status: str
    message_count: int
    last_error: str | None

    @property
    def kind(self) -> str:
        """Submission, Poison, Unreachable, Shadow or Delivery, from the identity (never localized)."""
        parts = self.identity.split("\\")
        if len(parts) >= 2 and parts[1] in ("Submission", "Poison", "Unreachable", "Shadow"):
            return parts[1]
        return "Shadow" if self.delivery_type == "ShadowRedundancy" else "Delivery"

    @property
    def key(self) -> str:
        return self.identity


def parse_queue(obj: Any, server: str) -> QueueInfo:
    identity = str(prop(obj, "QueueIdentity") or prop(obj, "Identity") or "")
    return QueueInfo(
        identity=identity,
        server=short_name(server),
        delivery_type=enum_name(prop(obj, "DeliveryType")) or "Undefined",
        next_hop=str(prop(obj, "NextHopDomain") or ""),
        status=enum_name(prop(obj, "Status"), QUEUE_STATUS_BY_INT) or "None",
        message_count=int(prop(obj, "MessageCount") or 0),
        last_error=text(prop(obj, "LastError")),
    )


@dataclass(frozen=True)
class ReplicationCheck:
    server: str
    check: str
    result: str
    error: str | None

    @property
    def key(self) -> str:
        return f"{self.server}:{self.check}"


def monitoring_result(obj: Any, names: dict[str, str]) -> str:
    """A monitoring cmdlet's Result: its .Value when the object survived, else its localized ToString,
    mapped to the enum name (Test-ExchangeServerHealth.ps1's `$r.Result.Value ?? $r.Result`, §5)."""
    raw = prop(obj, "Result")
    value = prop(raw, "Value") if hasattr(raw, "PSObject") and prop(raw, "Value") is not None else raw
    return names.get(str(value or "").strip().lower(), str(value))


def parse_replication_check(obj: Any) -> ReplicationCheck:
    result = monitoring_result(obj, REPLICATION_RESULTS)
    return ReplicationCheck(short_name(prop(obj, "Server")), str(prop(obj, "Check")), result, text(prop(obj, "Error")))


@dataclass(frozen=True)
class ServiceHealth:
    server: str
    role: str
    required_services_running: bool
    services_not_running: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.server}:{self.role}"


def parse_service_health(obj: Any, server: str) -> ServiceHealth:
    return ServiceHealth(short_name(server), str(prop(obj, "Role")), bool(prop(obj, "RequiredServicesRunning")),
                         strings(prop(obj, "ServicesNotRunning")))


@dataclass(frozen=True)
class ExchangeServer:
    name: str
    fqdn: str
    site: str
    admin_display_version: tuple[int, int, int, int]

    @property
    def key(self) -> str:
        return self.name


def parse_exchange_server(obj: Any) -> ExchangeServer:
    v = prop(obj, "AdminDisplayVersion")
    version = tuple(int(prop(v, k) or 0) for k in ("Major", "Minor", "Build", "Revision"))
    site = prop(obj, "Site")
    return ExchangeServer(short_name(prop(obj, "Name")), str(prop(obj, "Fqdn") or ""),
                          str(prop(site, "Name") or str(site or "").rsplit("/", 1)[-1]), version)  # type: ignore[arg-type]


@dataclass(frozen=True)
class MailboxServer:
    name: str
    activation_policy: str
    move_now: bool

    @property
    def key(self) -> str:
        return self.name


def parse_mailbox_server(obj: Any) -> MailboxServer:
    return MailboxServer(short_name(prop(obj, "Name")),
                         enum_name(prop(obj, "DatabaseCopyAutoActivationPolicy"), ACTIVATION_POLICY_BY_INT) or "Unknown",
                         bool(prop(obj, "DatabaseCopyActivationDisabledAndMoveNow", False)))


@dataclass(frozen=True)
class FileVersion:
    file_name: str
    version: tuple[int, int, int, int]
    server: str = ""

    @property
    def key(self) -> str:
        return self.server


def parse_file_version(obj: Any, server: str = "") -> FileVersion:
    version = tuple(int(prop(obj, k) or 0) for k in ("FileMajorPart", "FileMinorPart", "FileBuildPart", "FilePrivatePart"))
    return FileVersion(str(prop(obj, "FileName") or ""), version, short_name(server))  # type: ignore[arg-type]


@dataclass(frozen=True)
class VirtualDirectory:
    server: str
    name: str
    token_checking: str | None

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


def parse_virtual_directory(obj: Any, server: str) -> VirtualDirectory:
    return VirtualDirectory(short_name(server), str(prop(obj, "Name")),
                            enum_name(prop(obj, "ExtendedProtectionTokenChecking"), {0: "None", 1: "Allow", 2: "Require"}))


# ---- host facts (WinRS command output; formats of Windows Server 2019/2022) ----------------------


@dataclass(frozen=True)
class RebootIndicator:
    server: str
    source: str  # what says so: a registry key or value
    detail: str


def registry_values(stdout: str) -> dict[str, tuple[str, str]]:
    """`reg.exe query` output -> {value name: (type, data)}; lines are '    Name    REG_TYPE    data'."""
    values = {}
    for line in stdout.splitlines():
        if line.startswith("    ") and "    REG_" in line:
            name, _, rest = line.strip().partition("    ")
            kind, _, data = rest.strip().partition("    ")
            values[name.strip()] = (kind.strip(), data.strip())
    return values


@dataclass(frozen=True)
class VolumeSpace:
    server: str
    volume: str
    free_bytes: int | None
    total_bytes: int | None
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.server}:{self.volume}"


def parse_diskfree(server: str, volume: str, rc: int, stdout: str, stderr: str) -> VolumeSpace:
    """`fsutil volume diskfree X:`; newer builds add thousands separators and '( 1.2 GB)'."""
    numbers: dict[str, int] = {}
    for line in stdout.splitlines():
        label, sep, value = line.partition(":")
        if sep:
            digits = value.split("(")[0].replace(",", "").replace(".", "").strip()
            if digits.isdigit():
                # 2019 prints "Total # of free bytes", 2022 "Total free bytes": one key for both.
                numbers[" ".join(label.replace("# of ", "").split()).lower()] = int(digits)
    free, total = numbers.get("total free bytes"), numbers.get("total bytes")
    if rc != 0 or free is None or total is None:
        return VolumeSpace(short_name(server), volume, None, None, (stderr or stdout).strip() or f"exit code {rc}")
    return VolumeSpace(short_name(server), volume, free, total)


@dataclass(frozen=True)
class DotNetRelease:
    server: str
    release: int | None
    error: str | None = None

    @property
    def key(self) -> str:
        return self.server


@dataclass(frozen=True)
class WindowsService:
    server: str
    name: str
    state: str  # RUNNING, STOPPED, START_PENDING ...

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


def parse_sc_query(server: str, stdout: str) -> list[WindowsService]:
    """`sc.exe queryex` blocks: SERVICE_NAME: X ... STATE : 4  RUNNING."""
    services, name = [], None
    for line in stdout.splitlines():
        stripped = line.strip()
        if stripped.startswith("SERVICE_NAME:"):
            name = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("STATE") and name:
            services.append(WindowsService(short_name(server), name, stripped.split(":", 1)[1].split()[-1]))
            name = None
    return services


# ---- DAG, cluster, databases, client access --------------------------------------------------------


def names(value: Any) -> tuple[str, ...]:
    """Server names from an ADObjectId list (bags with Name), strings or FQDNs, short and lower-case."""
    out = []
    for v in value or ():
        out.append(short_name(prop(v, "Name") or v))
    return tuple(out)


@dataclass(frozen=True)
class DagStatus:
    name: str
    servers: tuple[str, ...]
    operational_servers: tuple[str, ...]
    primary_active_manager: str
    servers_in_maintenance: tuple[str, ...]
    witness_server: str | None
    witness_share_in_use: str | None

    @property
    def key(self) -> str:
        return self.name


def parse_dag_status(obj: Any) -> DagStatus:
    pam = prop(obj, "PrimaryActiveManager")
    return DagStatus(
        name=str(prop(obj, "Name")),
        servers=names(prop(obj, "Servers")),
        operational_servers=names(prop(obj, "OperationalServers")),
        primary_active_manager=short_name(prop(pam, "Name") or pam),
        servers_in_maintenance=names(prop(obj, "ServersInMaintenance")),
        witness_server=text(prop(obj, "WitnessServer")),
        witness_share_in_use=enum_name(prop(obj, "WitnessShareInUse"), {0: "Primary", 1: "Alternate", 2: "InvalidConfiguration", 3: "None"}),
    )


@dataclass(frozen=True)
class ClusterNode:
    name: str
    state: str  # Up, Down, Paused, Joining, Unknown
    seen_from: str = ""

    @property
    def key(self) -> str:
        return self.name


def parse_cluster_node(obj: Any, seen_from: str = "") -> ClusterNode:
    return ClusterNode(short_name(prop(obj, "Name")),
                       enum_name(prop(obj, "State"), {-1: "Unknown", 0: "Up", 1: "Down", 2: "Paused", 3: "Joining"}) or "Unknown",
                       short_name(seen_from))


@dataclass(frozen=True)
class MailboxDatabase:
    name: str
    mounted: bool | None
    mounted_on: str  # short server name of the active copy
    activation_preference: tuple[tuple[str, int], ...]
    seen_from: str = ""  # the server whose Get-MailboxDatabase -Server returned it

    @property
    def key(self) -> str:
        return self.name

    @property
    def preferred_server(self) -> str | None:
        return min(self.activation_preference, key=lambda p: p[1])[0] if self.activation_preference else None


def _preference(value: Any) -> tuple[tuple[str, int], ...]:
    """ActivationPreference: KeyValuePair bags {Key, Value} or their '[EX1, 1]' string form (§5)."""
    out = []
    for entry in value or ():
        if isinstance(entry, str):
            server, _, pref = entry.strip("[] ").partition(",")
            out.append((short_name(server.strip()), int(pref.strip())))
        else:
            key = prop(entry, "Key")
            out.append((short_name(prop(key, "Name") or key), int(prop(entry, "Value"))))
    return tuple(out)


def parse_mailbox_database(obj: Any, seen_from: str = "") -> MailboxDatabase:
    mounted = prop(obj, "Mounted")
    return MailboxDatabase(
        seen_from=short_name(seen_from),
        name=str(prop(obj, "Name")),
        mounted=None if mounted is None else bool(mounted),
        mounted_on=short_name(prop(obj, "MountedOnServer") or prop(obj, "ServerName") or ""),
        activation_preference=_preference(prop(obj, "ActivationPreference")),
    )


@dataclass(frozen=True)
class MapiResult:
    server: str
    database: str
    result: str  # Success, Failure, ...
    error: str | None

    @property
    def key(self) -> str:
        return f"{self.database}@{self.server}"


MAPI_RESULTS = {"success": "Success", "erfolgreich": "Success", "*failure*": "Failure", "failure": "Failure",
                "*fehler*": "Failure", "mdbmoved": "MdbMoved", "storenotrunning": "Failure"}


def parse_mapi(obj: Any) -> MapiResult:
    return MapiResult(short_name(prop(obj, "Server")), str(prop(obj, "Database")),
                      monitoring_result(obj, MAPI_RESULTS), text(prop(obj, "Error")))


@dataclass(frozen=True)
class ClientAccess:
    server: str
    internal_uri: str | None
    site_scope: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.server


def parse_client_access(obj: Any) -> ClientAccess:
    return ClientAccess(short_name(prop(obj, "Name")), text(prop(obj, "AutoDiscoverServiceInternalUri")),
                        strings(prop(obj, "AutoDiscoverSiteScope")))
