"""Typed views of what the cmdlets return, built from deserialized objects (dagcheck.clixml).

Over remote PowerShell, top-level enums keep their ToString and integer, nested ones degrade to
strings, monitoring results arrive as localized ToString, and enums unknown to the calling shell
arrive as bare integers (EXCHANGE-NOTES.md §5). The parsers accept all of these forms.

Two shapes of the same object reach the model (docs/remote-session-shapes.md): the *live* shape
(what Export-Clixml writes on an Exchange server, where Exchange's value types are rebuilt: a
ServerVersion bag with Major/Minor/Build/Revision, an ADObjectId bag, enums as ToString + I32) and
the *remote-session* shape a client of /PowerShell without Exchange's assemblies receives (those
value types as their ToString: "Version 15.2 (Build 1544.4)", "contoso.com/Configuration/Sites/A",
"1.5 GB (1,610,612,736 bytes)", "7.00:00:00"; enums as their names). A value in neither form raises
ParseError naming the cmdlet, the property and the value: never a silent zero or empty string.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from dagcheck.errors import ParseError

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


# ---- strict readers: one form or the other, else ParseError ----------------------------------------

_ENUM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_SERVER_VERSION = re.compile(r"^Version (\d+)\.(\d+) \(Build (\d+)\.(\d+)\)$")
_BYTES = re.compile(r"^(?:[\d.,]+ (?:B|KB|MB|GB|TB|PB) )?\((\d{1,3}(?:,\d{3})*|\d+) bytes\)$")
_TIMESPAN = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")


def required(obj: Any, cmdlet: str, name: str, label: str | None = None) -> str:
    """A property that must be there and not empty (a name, an identity): its string form.
    label names it in the error when it is nested (e.g. 'LocalStates[].Requester')."""
    value = prop(obj, name)
    if value is None or str(value).strip() == "":
        raise ParseError(cmdlet, label or name, value, "a non-empty value")
    return str(value)


def integer(obj: Any, cmdlet: str, name: str, default: int | None = None, label: str | None = None) -> int:
    """An integer property (I32/I64/U64, or its decimal string); absent means default, if there is one."""
    value = prop(obj, name)
    if value is None and default is not None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and not _is_enum(value):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").replace(",", "").isdigit():
        return int(value.strip().replace(",", ""))
    raise ParseError(cmdlet, label or name, value, "an integer")


def boolean(obj: Any, cmdlet: str, name: str, default: bool | None = None) -> bool:
    """A Boolean property, or its string form True/False; absent means default, if there is one."""
    value = prop(obj, name)
    if value is None and default is not None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ParseError(cmdlet, name, value, "True or False")


def enum_value(obj: Any, cmdlet: str, name: str, by_int: dict[int, str] | None = None,
               default: str | None = None, label: str | None = None) -> str:
    """An enum property: an enum object (ToString + I32), its name as a string, or a bare integer."""
    raw = prop(obj, name)
    if raw is None and default is not None:
        return default
    value = enum_name(raw, by_int)
    if value is None or not (_ENUM_NAME.match(value) or (value.lstrip("-").isdigit() and by_int is not None)):
        examples = f" such as {', '.join(list(by_int.values())[:3])}" if by_int else ""
        raise ParseError(cmdlet, label or name, raw, f"an enum name{examples}")
    return value


def server_version(obj: Any, cmdlet: str, name: str = "AdminDisplayVersion") -> tuple[int, int, int, int]:
    """ServerVersion: live, a bag with Major/Minor/Build/Revision; remote, its ToString
    'Version 15.2 (Build 1544.4)' (the form HealthChecker parses from AdminDisplayVersion.ToString())."""
    value = prop(obj, name)
    if hasattr(value, "PSObject") and prop(value, "Major") is not None:
        parts = [prop(value, k) for k in ("Major", "Minor", "Build", "Revision")]
        if all(isinstance(x, int) and not isinstance(x, bool) for x in parts):
            return tuple(int(x) for x in parts)  # type: ignore[return-value]
    match = _SERVER_VERSION.match(str(value).strip()) if isinstance(value, str) else None
    if match:
        return tuple(int(g) for g in match.groups())  # type: ignore[return-value]
    raise ParseError(cmdlet, name, value, "a ServerVersion (Major, Minor, Build, Revision) or 'Version 15.2 (Build 1544.4)'")


def ad_name(value: Any, cmdlet: str, name: str) -> str:
    """An ADObjectId's Name: live, a bag with Name; remote, its ToString, which is the name for
    servers ('EX01'), a canonical name for others ('contoso.com/Configuration/Sites/Site-A'), or a DN."""
    if hasattr(value, "PSObject") and prop(value, "Name") not in (None, ""):
        return str(prop(value, "Name"))
    text_value = str(value).strip() if isinstance(value, str) else ""
    if text_value.upper().startswith(("CN=", "OU=")):
        rdn = re.split(r"(?<!\\),", text_value, maxsplit=1)[0]
        return rdn.split("=", 1)[1]
    last = text_value.rstrip("/").rsplit("/", 1)[-1]
    if last:
        return last
    raise ParseError(cmdlet, name, value, "an ADObjectId (a bag with Name, or its string form)")


def ad_names(obj: Any, cmdlet: str, name: str) -> tuple[str, ...]:
    """A multi-valued ADObjectId property: a list of bags or of strings; absent or empty is ()."""
    value = prop(obj, name)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    return tuple(short_name(ad_name(v, cmdlet, name)) for v in value)


def byte_size(obj: Any, cmdlet: str, name: str) -> int | None:
    """ByteQuantifiedSize (e.g. DatabaseSize): '152.1 MB (159,449,088 bytes)' in both shapes (live, the
    bag's ToString); None when the cmdlet left it empty (without -Status)."""
    value = prop(obj, name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    match = _BYTES.match(str(value).strip())
    if match:
        return int(match.group(1).replace(",", ""))
    raise ParseError(cmdlet, name, value, "a ByteQuantifiedSize such as '1.5 GB (1,610,612,736 bytes)'")


def timespan_seconds(value: Any, cmdlet: str, name: str) -> float:
    """EnhancedTimeSpan / TimeSpan: a duration object, or its ToString '7.00:00:00' ([-][d.]hh:mm:ss[.fffffff])."""
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    match = _TIMESPAN.match(str(value).strip()) if isinstance(value, str) else None
    if match:
        sign, days, hours, minutes, seconds, fraction = match.groups()
        total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
        total += int((fraction or "0").ljust(7, "0")) / 10**7
        return -total if sign else float(total)
    raise ParseError(cmdlet, name, value, "a time span such as '7.00:00:00'")


def _is_enum(value: Any) -> bool:
    meta = getattr(value, "PSObject", None)
    return meta is not None and any(t.endswith("System.Enum") for t in getattr(meta, "type_names", []))


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


GSCS = "Get-ServerComponentState"
# RequesterDetails.ToString, the form a list element takes when it is not serialized as a bag
# (the fixture's <ToString>; guessed: that a remote session can send the elements in this form).
_REQUESTER_TEXT = re.compile(r"^Requestor:(?P<requester>[A-Za-z]+); State:(?P<state>[A-Za-z]+); Timestamp:(?P<stamp>.+)$")


def _requesters(obj: Any, name: str) -> tuple[RequesterState, ...]:
    out = []
    for r in prop(obj, name) or ():
        if isinstance(r, str):
            match = _REQUESTER_TEXT.match(r.strip())
            if not match:
                raise ParseError(GSCS, f"{name}[]", r, "a RequesterDetails or 'Requestor:X; State:Y; Timestamp:Z'")
            try:  # en-US ToString of the local time (guessed: read as UTC)
                stamp: dt.datetime | None = dt.datetime.strptime(
                    match["stamp"].strip(), "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=dt.UTC)
            except ValueError:
                stamp = None
            out.append(RequesterState(match["requester"], match["state"], stamp))
            continue
        stamp = prop(r, "Timestamp")
        out.append(RequesterState(required(r, GSCS, "Requester", f"{name}[].Requester"),
                                  enum_value(r, GSCS, "State", SERVICE_STATE_BY_INT, label=f"{name}[].State"),
                                  stamp if isinstance(stamp, dt.datetime) else None))
    return tuple(out)


def parse_component_state(obj: Any, server: str | None = None) -> ComponentState:
    return ComponentState(
        server=short_name(server or required(obj, GSCS, "ServerFqdn")),
        component=required(obj, GSCS, "Component"),
        state=enum_value(obj, GSCS, "State", SERVICE_STATE_BY_INT),
        local=_requesters(obj, "LocalStates"),
        remote=_requesters(obj, "RemoteStates"),
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


GCOPY = "Get-MailboxDatabaseCopyStatus"


def _lagged(obj: Any) -> bool:
    """ReplayLagStatus: 'Enabled:True; PlayDownReason:None; ...' (its ToString, both shapes), or a bag
    with Enabled (guessed: a rebuilt ReplayLagStatus object); absent means not lagged."""
    value = prop(obj, "ReplayLagStatus")
    if value is None:
        return False
    if hasattr(value, "PSObject") and prop(value, "Enabled") is not None:
        return boolean(value, GCOPY, "Enabled")
    flat = str(value).replace(" ", "").lower()
    if flat.startswith(("enabled:true", "enabled:false")):
        return flat.startswith("enabled:true")
    raise ParseError(GCOPY, "ReplayLagStatus", value, "'Enabled:True; ...' or 'Enabled:False; ...'")


def parse_copy_status(obj: Any) -> DatabaseCopyStatus:
    name = str(prop(obj, "Name") or prop(obj, "Identity") or "")
    db, _, server = name.partition("\\")
    preference = prop(obj, "ActivationPreference")
    return DatabaseCopyStatus(
        database=str(prop(obj, "DatabaseName") or db) or required(obj, GCOPY, "DatabaseName"),
        server=short_name(prop(obj, "MailboxServer") or server) or short_name(required(obj, GCOPY, "MailboxServer")),
        status=enum_value(obj, GCOPY, "Status", COPY_STATUS_BY_INT),
        active=boolean(obj, GCOPY, "ActiveCopy", False),
        activation_preference=None if preference is None else integer(obj, GCOPY, "ActivationPreference"),
        copy_queue=integer(obj, GCOPY, "CopyQueueLength"),
        replay_queue=integer(obj, GCOPY, "ReplayQueueLength"),
        content_index=enum_value(obj, GCOPY, "ContentIndexState", CONTENT_INDEX_BY_INT, default="Unknown"),
        activation_suspended=boolean(obj, GCOPY, "ActivationSuspended", False),
        lagged=_lagged(obj),
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
    identity = str(prop(obj, "QueueIdentity") or prop(obj, "Identity") or "") or required(obj, "Get-Queue", "Identity")
    return QueueInfo(
        identity=identity,
        server=short_name(server),
        delivery_type=enum_value(obj, "Get-Queue", "DeliveryType"),
        next_hop=str(prop(obj, "NextHopDomain") or ""),  # empty is a real value (Submission on some builds)
        status=enum_value(obj, "Get-Queue", "Status", QUEUE_STATUS_BY_INT),
        message_count=integer(obj, "Get-Queue", "MessageCount"),
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


def monitoring_result(obj: Any, names: dict[str, str], cmdlet: str = "Test-ReplicationHealth") -> str:
    """A monitoring cmdlet's Result: its .Value when the object survived, else its localized ToString,
    mapped to the enum name (Test-ExchangeServerHealth.ps1's `$r.Result.Value ?? $r.Result`, §5).
    A ToString in a language the map does not know is a ParseError, not a verdict."""
    raw = prop(obj, "Result")
    value = prop(raw, "Value") if hasattr(raw, "PSObject") and prop(raw, "Value") is not None else raw
    key = str(value if value is not None else "").strip().lower()
    if key in names:
        return names[key]
    known = {v.lower(): v for v in names.values()}
    if key in known:
        return known[key]
    raise ParseError(cmdlet, "Result", raw, f"one of {', '.join(sorted(set(names.values())))} (English or German ToString)")


def parse_replication_check(obj: Any) -> ReplicationCheck:
    result = monitoring_result(obj, REPLICATION_RESULTS)
    return ReplicationCheck(short_name(required(obj, "Test-ReplicationHealth", "Server")),
                            required(obj, "Test-ReplicationHealth", "Check"), result, text(prop(obj, "Error")))


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
    return ServiceHealth(short_name(server), required(obj, "Test-ServiceHealth", "Role"),
                         boolean(obj, "Test-ServiceHealth", "RequiredServicesRunning"),
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
    cmdlet = "Get-ExchangeServer"
    return ExchangeServer(short_name(required(obj, cmdlet, "Name")), required(obj, cmdlet, "Fqdn"),
                          ad_name(prop(obj, "Site"), cmdlet, "Site"), server_version(obj, cmdlet))


@dataclass(frozen=True)
class MailboxServer:
    name: str
    activation_policy: str
    move_now: bool

    @property
    def key(self) -> str:
        return self.name


def parse_mailbox_server(obj: Any) -> MailboxServer:
    cmdlet = "Get-MailboxServer"
    return MailboxServer(short_name(required(obj, cmdlet, "Name")),
                         enum_value(obj, cmdlet, "DatabaseCopyAutoActivationPolicy", ACTIVATION_POLICY_BY_INT),
                         boolean(obj, cmdlet, "DatabaseCopyActivationDisabledAndMoveNow", False))


@dataclass(frozen=True)
class FileVersion:
    file_name: str
    version: tuple[int, int, int, int]
    server: str = ""

    @property
    def key(self) -> str:
        return self.server


def parse_file_version(obj: Any, server: str = "") -> FileVersion:
    cmdlet = "Get-Command ExSetup.exe"
    version = tuple(integer(obj, cmdlet, k) for k in ("FileMajorPart", "FileMinorPart", "FileBuildPart", "FilePrivatePart"))
    return FileVersion(str(prop(obj, "FileName") or ""), version, short_name(server))  # type: ignore[arg-type]


@dataclass(frozen=True)
class VirtualDirectory:
    server: str
    name: str
    token_checking: str | None
    # What a CU can quietly reset (the configuration baseline compares them across maintenance).
    internal_url: str | None = None
    external_url: str | None = None
    internal_auth: tuple[str, ...] = ()
    external_auth: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


TOKEN_CHECKING_BY_INT = {0: "None", 1: "Allow", 2: "Require"}


def parse_virtual_directory(obj: Any, server: str) -> VirtualDirectory:
    cmdlet = "Get-*VirtualDirectory"
    name = required(obj, cmdlet, "Name")
    # Empty (not read from IIS, e.g. -ADPropertiesOnly) stays None: the rules report it as unknown.
    token = None if prop(obj, "ExtendedProtectionTokenChecking") is None else enum_value(
        obj, cmdlet, "ExtendedProtectionTokenChecking", TOKEN_CHECKING_BY_INT)
    if token is not None and token not in TOKEN_CHECKING_BY_INT.values():
        raise ParseError(cmdlet, f"{name}.ExtendedProtectionTokenChecking", prop(obj, "ExtendedProtectionTokenChecking"),
                         "None, Allow or Require")
    return VirtualDirectory(short_name(server), name, token, text(prop(obj, "InternalUrl")), text(prop(obj, "ExternalUrl")),
                            enum_names(obj, cmdlet, "InternalAuthenticationMethods", f"{name}.InternalAuthenticationMethods"),
                            enum_names(obj, cmdlet, "ExternalAuthenticationMethods", f"{name}.ExternalAuthenticationMethods"))


def enum_names(obj: Any, cmdlet: str, name: str, label: str | None = None) -> tuple[str, ...]:
    """A MultiValuedProperty of an enum (e.g. InternalAuthenticationMethods): a list of enum objects
    (live: <ToString>Basic</ToString><I32>0</I32>, CSS-Exchange's GetOwaVirtualDirectory.xml) or of
    their names (remote, guessed); absent or empty is ()."""
    value = prop(obj, name)
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for v in items:
        shown = enum_name(v)
        if shown is None or not _ENUM_NAME.match(shown):
            raise ParseError(cmdlet, label or name, value, "a list of enum names such as Basic, Fba, Ntlm")
        out.append(shown)
    return tuple(out)


def flag_names(obj: Any, cmdlet: str, name: str, label: str | None = None) -> tuple[str, ...]:
    """A [Flags] enum such as AuthMechanism or PermissionGroups: its ToString 'Tls, Integrated, BasicAuth'
    (an enum object's ToString, or that text itself); sorted, so that two reads compare equal.
    Guessed: that a remote session delivers the ToString text (no capture of Get-ReceiveConnector here)."""
    raw = prop(obj, name)
    if raw is None:
        return ()
    shown = enum_name(raw)
    parts = [p.strip() for p in str(shown).split(",") if p.strip()]
    if not parts or not all(_ENUM_NAME.match(p) for p in parts):
        raise ParseError(cmdlet, label or name, raw, "flag names separated by commas, such as 'Tls, Integrated'")
    return tuple(sorted(parts))


@dataclass(frozen=True)
class ReceiveConnector:
    """Get-ReceiveConnector -Server: what a CU or a repair must leave as the administrator set it."""

    server: str
    name: str
    transport_role: str  # FrontendTransport (port 25, 587, 717) or HubTransport (2525, 465)
    bindings: tuple[str, ...]  # IPBinding ToString: '0.0.0.0:25', '[::]:25'
    remote_ip_ranges: tuple[str, ...]
    auth_mechanism: tuple[str, ...]
    permission_groups: tuple[str, ...]
    enabled: bool
    fqdn: str | None
    tls_certificate_name: str | None = None  # '<I>issuer<S>subject' of the certificate it offers for STARTTLS

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


def parse_receive_connector(obj: Any, server: str) -> ReceiveConnector:
    cmdlet = "Get-ReceiveConnector"
    name = required(obj, cmdlet, "Name")
    return ReceiveConnector(short_name(server), name, enum_value(obj, cmdlet, "TransportRole", default="HubTransport"),
                            tuple(sorted(strings(prop(obj, "Bindings")))), tuple(sorted(strings(prop(obj, "RemoteIPRanges")))),
                            flag_names(obj, cmdlet, "AuthMechanism", f"{name}.AuthMechanism"),
                            flag_names(obj, cmdlet, "PermissionGroups", f"{name}.PermissionGroups"),
                            boolean(obj, cmdlet, "Enabled", True), text(prop(obj, "Fqdn")),
                            text(prop(obj, "TlsCertificateName")) or None)


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
class WindowsBuild:
    """The OS build (HKLM\\...\\Windows NT\\CurrentVersion CurrentBuildNumber): 17763 is Windows Server 2019."""

    server: str
    build: int | None
    error: str | None = None

    @property
    def key(self) -> str:
        return self.server


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
    if not services:  # every Windows server runs services: nothing read means output we do not understand
        raise ParseError("sc.exe queryex", "output", stdout.strip() or None,
                         "SERVICE_NAME: and STATE : blocks (sc.exe's English labels)", server)
    return services


# ---- DAG, cluster, databases, client access --------------------------------------------------------


def names(value: Any) -> tuple[str, ...]:
    """Server names from an ADObjectId list (bags with Name), strings or FQDNs, short and lower-case."""
    out = []
    for v in value or ():
        out.append(short_name(prop(v, "Name") or v))
    return tuple(out)


GDAG = "Get-DatabaseAvailabilityGroup"


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
    in_use = prop(obj, "WitnessShareInUse")
    return DagStatus(
        name=required(obj, GDAG, "Name"),
        servers=ad_names(obj, GDAG, "Servers"),
        operational_servers=ad_names(obj, GDAG, "OperationalServers"),
        # Empty without -Status (or while no PAM is elected): '' makes the PAM check fail visibly.
        primary_active_manager="" if pam is None else short_name(ad_name(pam, GDAG, "PrimaryActiveManager")),
        servers_in_maintenance=ad_names(obj, GDAG, "ServersInMaintenance"),
        witness_server=text(prop(obj, "WitnessServer")),
        witness_share_in_use=None if in_use is None else enum_value(
            obj, GDAG, "WitnessShareInUse", {0: "Primary", 1: "Alternate", 2: "InvalidConfiguration", 3: "None"}),
    )


@dataclass(frozen=True)
class ClusterNode:
    name: str
    state: str  # Up, Down, Paused, Joining, Unknown
    seen_from: str = ""

    @property
    def key(self) -> str:
        return self.name


CLUSTER_NODE_STATE_BY_INT = {-1: "Unknown", 0: "Up", 1: "Down", 2: "Paused", 3: "Joining"}


def parse_cluster_node(obj: Any, seen_from: str = "") -> ClusterNode:
    return ClusterNode(short_name(required(obj, "Get-ClusterNode", "Name")),
                       enum_value(obj, "Get-ClusterNode", "State", CLUSTER_NODE_STATE_BY_INT),
                       short_name(seen_from))


@dataclass(frozen=True)
class MailboxDatabase:
    name: str
    mounted: bool | None
    mounted_on: str  # short server name of the active copy
    activation_preference: tuple[tuple[str, int], ...]
    seen_from: str = ""  # the server whose Get-MailboxDatabase -Server returned it
    size_bytes: int | None = None  # DatabaseSize (ByteQuantifiedSize), with -Status

    @property
    def key(self) -> str:
        return self.name

    @property
    def preferred_server(self) -> str | None:
        return min(self.activation_preference, key=lambda p: p[1])[0] if self.activation_preference else None


GMDB = "Get-MailboxDatabase"
_KVP_TEXT = re.compile(r"^\[([^,\]]+),\s*(\d+)\]$")


def _preference(value: Any) -> tuple[tuple[str, int], ...]:
    """ActivationPreference: KeyValuePair bags {Key, Value} or their '[EX1, 1]' string form (§5)."""
    out = []
    for entry in value or ():
        if isinstance(entry, str):
            match = _KVP_TEXT.match(entry.strip())
            if not match:
                raise ParseError(GMDB, "ActivationPreference[]", entry, "'[EX1, 1]' or a {Key, Value} pair")
            out.append((short_name(match.group(1).strip()), int(match.group(2))))
        else:
            key = prop(entry, "Key")
            if key is None:
                raise ParseError(GMDB, "ActivationPreference[]", entry, "'[EX1, 1]' or a {Key, Value} pair")
            out.append((short_name(ad_name(key, GMDB, "ActivationPreference[].Key")),
                        integer(entry, GMDB, "Value", label="ActivationPreference[].Value")))
    return tuple(out)


def parse_mailbox_database(obj: Any, seen_from: str = "") -> MailboxDatabase:
    mounted = prop(obj, "Mounted")
    return MailboxDatabase(
        seen_from=short_name(seen_from),
        name=required(obj, GMDB, "Name"),
        mounted=None if mounted is None else boolean(obj, GMDB, "Mounted"),
        mounted_on=short_name(prop(obj, "MountedOnServer") or prop(obj, "ServerName") or ""),
        activation_preference=_preference(prop(obj, "ActivationPreference")),
        size_bytes=byte_size(obj, GMDB, "DatabaseSize"),
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
    cmdlet = "Test-MAPIConnectivity"
    return MapiResult(short_name(required(obj, cmdlet, "Server")), required(obj, cmdlet, "Database"),
                      monitoring_result(obj, MAPI_RESULTS, cmdlet), text(prop(obj, "Error")))


@dataclass(frozen=True)
class ClientAccess:
    server: str
    internal_uri: str | None
    site_scope: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.server


def parse_client_access(obj: Any) -> ClientAccess:
    # AutoDiscoverServiceInternalUri: System.Uri, a string in both shapes; empty (no SCP URI) stays None.
    return ClientAccess(short_name(required(obj, "Get-ClientAccessService", "Name")),
                        text(prop(obj, "AutoDiscoverServiceInternalUri")), strings(prop(obj, "AutoDiscoverSiteScope")))
