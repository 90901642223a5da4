"""Load an inventory file, validate it against the shipped JSON Schema, and turn it into dataclasses.

Validation happens before any connection so that a typo never costs a half-finished run, and the
error names the file and the path inside it (``servers[2].fqdn``) the way an administrator would
look for it in the YAML.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from dagcheck import paths, validation
from dagcheck.cleartext import FIELD, cleartext_problem
from dagcheck.errors import InventoryError
from dagcheck.lab.settings import parse_lab_section
from dagcheck.yamlfile import read_yaml

SCHEMA_PATH = paths.INVENTORY_SCHEMA

DEFAULT_CONTENT_INDEX_ALLOWED = ("Healthy", "NotApplicable", "AutoSuspended")


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach one server. Secrets are never held here, only where to find them."""

    exchange_uri: str | None = None
    windows_uri: str | None = None
    # Where to connect when it is not the URIs' host (a load balancer, a DNS alias, an address): the
    # URIs' host stays the name whose SPN (HTTP/<host>) Kerberos asks a ticket for.
    connect_address: str | None = None
    auth: str = "kerberos"
    username_env: str | None = None
    password_env: str | None = None
    certificate_pem_env: str | None = None
    certificate_key_pem_env: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    encryption: str = "auto"
    operation_timeout: int = 60
    read_timeout: int = 90
    # Shells dagcheck keeps open on one server at once (Exchange pool, Windows pool, WinRS cmd shell):
    # well under Exchange's PowerShellMaxConcurrency (18) and WinRM's MaxShellsPerUser (30), which
    # every other admin session of the same account shares. Also the calls run on the server at once
    # (the pipelines of one runspace pool side by side: dagcheck.remote.psrp.PsrpTransport.lanes).
    max_runspaces: int = 3
    # The largest answer accepted from the server, enforced while reading (dagcheck.remote.guard).
    max_response_mb: int = 64
    # Accept Basic or unencrypted messages over http to this (non-loopback) server; refused otherwise
    # (dagcheck.cleartext), and reported in every run when accepted.
    allow_cleartext: bool = False
    # The server's own IIS front end, for the protocols' health pages (dagcheck.sources.protocol_health);
    # None: https://<fqdn>. The TLS settings above apply to it too.
    health_uri: str | None = None


@dataclass(frozen=True)
class Server:
    name: str
    fqdn: str
    site: str
    dag: str | None
    connection: ConnectionSettings

    def exchange_uri(self) -> str:
        return self.connection.exchange_uri or f"https://{self.fqdn}/PowerShell"

    def windows_uri(self) -> str:
        return self.connection.windows_uri or f"https://{self.fqdn}:5986/wsman"


@dataclass(frozen=True)
class Witness:
    server: str
    directory: str | None = None
    alternate_server: str | None = None  # AlternateWitnessServer, for a DAG stretched over two datacentres
    alternate_directory: str | None = None


@dataclass(frozen=True)
class Dag:
    name: str
    members: tuple[str, ...]
    witness: Witness | None = None
    allow_parallel_maintenance: bool = False
    max_parallel_maintenance: int = 1  # members that may hold the maintenance lease at once
    patch_command: str | None = None  # rolling patch: the local command run on each member's turn
    target_build: str | None = None  # rolling patch: the build every member goes to

    @property
    def maintenance_slots(self) -> int:
        """How many members may be in maintenance at once (allow_parallel_maintenance: all of them)."""
        return len(self.members) if self.allow_parallel_maintenance else max(1, self.max_parallel_maintenance)


@dataclass(frozen=True)
class AutodiscoverSite:
    uri: str
    site_scope: tuple[str, ...]


# Where the queue defaults come from (Learn, "Exchange Server Active Manager", best copy and server selection:
# https://learn.microsoft.com/exchange/high-availability/database-availability-groups/active-manager): Active
# Manager only considers a passive copy with a copy queue under 10 and a replay queue under 50 logs, and the
# default AutoDatabaseMountDial, GoodAvailability, mounts it automatically only with at most 6 logs missing
# (BestAvailability: 12; Set-MailboxServer -AutoDatabaseMountDial). Both values are inclusive maxima: the largest
# queue that still passes, so 6 (the stricter of < 10 and <= 6) and 49 (< 50).
DEFAULT_COPY_QUEUE_MAX = 6
DEFAULT_REPLAY_QUEUE_MAX = 49


@dataclass(frozen=True)
class Expectations:
    copy_queue_max: int = DEFAULT_COPY_QUEUE_MAX
    replay_queue_max: int = DEFAULT_REPLAY_QUEUE_MAX
    transport_queue_max: int = 0
    content_index_allowed: tuple[str, ...] = DEFAULT_CONTENT_INDEX_ALLOWED
    activation_policy: str = "Unrestricted"
    build: str = "same-across-dag"
    ep_matrix: str = "microsoft-default"
    ep_overrides: dict[str, str] = field(default_factory=dict)
    autodiscover: dict[str, AutodiscoverSite] = field(default_factory=dict)
    monitoring_inactive_in_maintenance: bool = False
    host_volumes: tuple[str, ...] = ("C:",)
    host_min_free_gb: int = 10
    host_min_free_percent: int = 10
    host_install_volume: str = "C:"  # where Exchange is installed: setup needs 30 GB free there (rules.host)
    # Areas of the configuration baseline (dagcheck/drift.py) whose change across maintenance is critical,
    # beyond those the expectations above already cover (Extended Protection, SSL, SCP, activation).
    drift_critical: tuple[str, ...] = ()
    # Days before a certificate bound to IIS or SMTP expires: a warning (DAG-CERT-002), a failure (DAG-CERT-003).
    cert_warning_days: int = 30
    cert_critical_days: int = 7


@dataclass(frozen=True)
class MaintenanceSettings:
    poll_interval: float = 10.0
    wait_timeout: int = 900
    no_progress_polls: int = 12
    force_allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaintenanceWindow:
    """Planned maintenance declared in the inventory: one server, or a whole DAG (a rolling patch)."""

    start: dt.datetime
    end: dt.datetime
    reason: str
    by: str
    server: str | None = None
    dag: str | None = None
    target_build: str | None = None

    def covers(self, server: str, dag: str | None) -> bool:
        if self.server is not None:
            return self.server.lower() == server.lower()
        return dag is not None and (self.dag or "").lower() == dag.lower()

    def current(self, now: dt.datetime) -> bool:
        return self.start <= now <= self.end

    def describe(self) -> str:
        where = self.server or f"DAG {self.dag}"
        return f"{where} {self.start.isoformat()} to {self.end.isoformat()} ({self.reason}, by {self.by})"


def parse_stamp(value: Any) -> dt.datetime:
    """An ISO 8601 time from the inventory; without an offset it is UTC (YAML may already have parsed it)."""
    stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def parse_date(value: Any) -> dt.date:
    """A calendar date from the inventory (a waiver's expires): YAML's date, or its YYYY-MM-DD text. ValueError
    says what is wrong ("tomorrow", "2026-02-30", a number), so the loader names the field before any connection."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"not a date YYYY-MM-DD: {value!r} ({exc})") from None
    raise ValueError(f"not a date YYYY-MM-DD: {value!r} (a {type(value).__name__})")


@dataclass(frozen=True)
class Inventory:
    file: str
    sites: tuple[str, ...]
    servers: tuple[Server, ...]
    dags: tuple[Dag, ...]
    expectations: Expectations
    # The embedded lab's own section, kept raw: the lab owns its meaning (dagcheck.lab.settings parses it).
    lab: dict[str, Any] | None = None
    maintenance: MaintenanceSettings = field(default_factory=MaintenanceSettings)
    # Read by dagcheck.report (kept raw here: the report package owns their meaning).
    report: dict[str, Any] = field(default_factory=dict)
    waivers: tuple[dict[str, Any], ...] = ()
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()

    def server(self, name: str) -> Server:
        try:
            return self._by_name[0][name.lower()]
        except KeyError:
            raise KeyError(name) from None

    def dag(self, name: str) -> Dag:
        try:
            return self._by_name[1][name.lower()]
        except KeyError:
            raise KeyError(name) from None

    @functools.cached_property
    def _by_name(self) -> tuple[dict[str, Server], dict[str, Dag]]:
        """Lookups by lower-case name: checks ask per test item, tens of thousands of times in a fleet run
        (a scan of every server each time was quadratic). The first of a duplicated name wins, as before."""
        servers: dict[str, Server] = {}
        dags: dict[str, Dag] = {}
        for server in self.servers:
            servers.setdefault(server.name.lower(), server)
        for dag in self.dags:
            dags.setdefault(dag.name.lower(), dag)
        return servers, dags

    def dag_of(self, server: str) -> Dag | None:
        name = self.server(server).dag
        return self.dag(name) if name else None


def load_inventory(path: str | Path) -> Inventory:
    """Read, validate and build the inventory, or raise InventoryError naming file and path."""
    return parse_inventory(read_yaml(path), str(path))


def validate_part(data: Any, definition: str, file: str, path: str) -> None:
    """Validate one part of a file against one of the schema's $defs (e.g. a seed's connection)."""
    schema = {**_schema(), "$ref": f"#/$defs/{definition}"}
    schema.pop("required", None)
    schema.pop("properties", None)
    schema.pop("additionalProperties", None)
    schema.pop("type", None)
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(data))
    if errors:
        error = jsonschema.exceptions.best_match(errors) or errors[0]
        where = ".".join([path, validation.json_path(error.absolute_path)]).strip(".")
        raise InventoryError(file, where, validation.describe(error))


def _with_install_volume(host: dict[str, Any]) -> tuple[str, ...]:
    """The volumes to read free space of: the inventory's, and the install volume (setup's 30 GB) with them."""
    volumes = [str(v).upper() for v in host.get("volumes", ["C:"])]
    install = str(host.get("install_volume", "C:")).upper()
    return tuple(volumes if install in volumes else [*volumes, install])


def parse_inventory(data: Any, file: str = "<inventory>") -> Inventory:
    """Validate already-parsed YAML data (tests build inventories in memory this way)."""
    if isinstance(data, dict) and isinstance(data.get("maintenance_windows"), list):
        # An unquoted YAML timestamp arrives as a datetime: the schema judges its ISO text.
        data["maintenance_windows"] = [
            {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in w.items()} if isinstance(w, dict) else w
            for w in data["maintenance_windows"]
        ]
    _validate_schema(data, file)
    _validate_references(data, file)
    _validate_lab_section(data, file)
    inventory = _build(data, file)
    _validate_cleartext(inventory, file)
    return inventory


def _validate_lab_section(data: dict[str, Any], file: str) -> None:
    """The lab's section is the lab's to judge, against its own schema (inventory/lab.schema.json) and the servers
    it names: the one call from the loader into the lab (dagcheck.lab.settings), so that a bad lab section still
    fails here, at load and before any connection, naming the field. The product keeps the section raw."""
    if "lab" in data:
        parse_lab_section(data["lab"] or {}, {s["name"].lower(): s.get("dag") for s in data["servers"]}, file)


def _validate_cleartext(inventory: Inventory, file: str) -> None:
    """Refuse a password or messages in clear over the network unless the inventory accepts it for that server."""
    for i, server in enumerate(inventory.servers):
        conn = server.connection
        if conn.allow_cleartext:
            continue
        for uri in (server.exchange_uri(), server.windows_uri()):
            problem = cleartext_problem(uri, conn.auth, conn.encryption, conn.connect_address)
            if problem is not None:
                raise InventoryError(
                    file,
                    f"servers[{i}].connection.{FIELD}",
                    f"server {server.name}: {problem}. Use "
                    "https (the default URIs), or "
                    f"NTLM/Kerberos with encryption: auto; or set {FIELD}: true in {server.name}'s "
                    "connection settings to accept it (every run then says so)",
                )


def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema())


def _validate_schema(data: Any, file: str) -> None:
    validation.text_keys(data, file)
    validation.check(_validator(), data, file)


def _duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    dups = []
    for name in names:
        if name.lower() in seen:
            dups.append(name)
        seen.add(name.lower())
    return dups


def _validate_timeouts(data: dict[str, Any], fail: Any) -> None:
    """A server holds a Receive for the whole OperationTimeout before answering TimedOut: a read_timeout
    that is not longer would cut every quiet long poll as a network failure."""
    defaults = data.get("connection") or {}
    places = [("connection", defaults)] + [
        (f"servers[{i}].connection", {**defaults, **(s.get("connection") or {})}) for i, s in enumerate(data["servers"])
    ]
    for path, conn in places:
        op, read = conn.get("operation_timeout", 60), conn.get("read_timeout", 90)
        if read <= op:
            fail(
                f"{path}.read_timeout",
                f"{read} must be longer than operation_timeout ({op}): the server holds a "
                "Receive for the whole operation timeout",
            )


def _validate_references(data: dict[str, Any], file: str) -> None:
    def fail(path: str, problem: str) -> None:
        raise InventoryError(file, path, problem)

    sites = [s["name"] for s in data["sites"]]
    for i, name in enumerate(sites):
        if name.lower() in {s.lower() for s in sites[:i]}:
            fail(f"sites[{i}].name", f"duplicate site name {name!r}")
    servers = data["servers"]
    site_set = {s.lower() for s in sites}
    dag_names = {d["name"].lower() for d in data["dags"]}
    names: set[str] = set()  # a set, not a list re-lowered per server: 10,000 servers stay linear
    for i, server in enumerate(servers):
        if server["name"].lower() in names:
            fail(f"servers[{i}].name", f"duplicate server name {server['name']!r}")
        names.add(server["name"].lower())
        if server["site"].lower() not in site_set:
            fail(f"servers[{i}].site", f"site {server['site']!r} is not listed under sites")
        if "dag" in server and server["dag"].lower() not in dag_names:
            fail(f"servers[{i}].dag", f"DAG {server['dag']!r} is not listed under dags")
    _validate_timeouts(data, fail)
    certs = (data.get("expectations") or {}).get("certificates") or {}
    if certs.get("critical_days", 7) >= certs.get("warning_days", 30):
        fail(
            "expectations.certificates.critical_days",
            f"{certs.get('critical_days', 7)} days must be fewer than warning_days ({certs.get('warning_days', 30)})",
        )
    fqdns = [s["fqdn"] for s in servers]
    for dup in _duplicates(fqdns):
        fail(f"servers[{fqdns.index(dup)}].fqdn", f"FQDN {dup!r} is used by two servers")
    by_name = {s["name"].lower(): s for s in servers}
    seen_dags: set[str] = set()
    for d, dag in enumerate(data["dags"]):
        if dag["name"].lower() in seen_dags:
            fail(f"dags[{d}].name", f"duplicate DAG name {dag['name']!r}")
        seen_dags.add(dag["name"].lower())
        for m, member in enumerate(dag["members"]):
            server = by_name.get(member.lower())
            if server is None:
                fail(f"dags[{d}].members[{m}]", f"member {member!r} is not listed under servers")
            elif server.get("dag", "").lower() != dag["name"].lower():
                fail(f"dags[{d}].members[{m}]", f"server {member!r} does not name DAG {dag['name']!r} in its dag key")
    for i, server in enumerate(servers):
        if "dag" in server:
            dag = next(x for x in data["dags"] if x["name"].lower() == server["dag"].lower())
            if server["name"].lower() not in {m.lower() for m in dag["members"]}:
                fail(f"servers[{i}].dag", f"server {server['name']!r} is not among the members of DAG {dag['name']!r}")
    for site in (data.get("expectations") or {}).get("autodiscover", {}) or {}:
        if site.lower() not in site_set:
            fail(f"expectations.autodiscover.{site}", f"site {site!r} is not listed under sites")
        for j, scoped in enumerate(data["expectations"]["autodiscover"][site].get("site_scope", [])):
            if scoped.lower() not in site_set:
                fail(f"expectations.autodiscover.{site}.site_scope[{j}]", f"site {scoped!r} is not listed under sites")
    for w, window in enumerate(data.get("maintenance_windows") or []):
        if "server" in window and window["server"].lower() not in by_name:
            fail(f"maintenance_windows[{w}].server", f"server {window['server']!r} is not listed under servers")
        if "dag" in window and window["dag"].lower() not in dag_names:
            fail(f"maintenance_windows[{w}].dag", f"DAG {window['dag']!r} is not listed under dags")
        for key in ("start", "end"):
            try:
                parse_stamp(window[key])
            except ValueError as exc:
                fail(f"maintenance_windows[{w}].{key}", f"{window[key]!r} is not an ISO 8601 time ({exc})")
        start, end = parse_stamp(window["start"]), parse_stamp(window["end"])
        if end <= start:
            fail(f"maintenance_windows[{w}].end", f"{window['end']} is not after start {window['start']}")
    for i, waiver in enumerate(data.get("waivers") or []):
        # Checked here, at load (exit 4, before any connection), not when the first failure meets the waiver.
        try:
            parse_date(waiver["expires"])
        except ValueError as exc:
            fail(f"waivers[{i}].expires", str(exc))


def _connection(raw: dict[str, Any] | None, base: ConnectionSettings) -> ConnectionSettings:
    if not raw:
        return base
    merged = {**base.__dict__, **{k: v for k, v in raw.items() if k != "endpoints"}}
    return ConnectionSettings(**merged)


def endpoints_map(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    """connection.endpoints (top level): FQDN (lower-case) -> where that server is reached. It is how servers
    that dagcheck discover found by name reach their endpoints when these are not the defaults (the lab's ports)."""
    raw = (data.get("connection") or {}).get("endpoints") or {}
    return {str(fqdn).lower(): dict(where) for fqdn, where in raw.items()}


def server_connection(
    data: dict[str, Any], fqdn: str, own: dict[str, Any] | None, defaults: ConnectionSettings
) -> ConnectionSettings:
    """A server's settings: the defaults, then the endpoints map's entry for its FQDN, then its own keys."""
    return _connection({**endpoints_map(data).get(fqdn.lower(), {}), **(own or {})}, defaults)


def _build(data: dict[str, Any], file: str) -> Inventory:
    defaults = _connection(data.get("connection"), ConnectionSettings())
    servers = tuple(
        Server(
            name=s["name"],
            fqdn=s["fqdn"],
            site=s["site"],
            dag=s.get("dag"),
            connection=server_connection(data, s["fqdn"], s.get("connection"), defaults),
        )
        for s in data["servers"]
    )
    dags = tuple(
        Dag(
            name=d["name"],
            members=tuple(d["members"]),
            witness=Witness(**d["witness"]) if d.get("witness") else None,
            allow_parallel_maintenance=d.get("allow_parallel_maintenance", False),
            max_parallel_maintenance=d.get("max_parallel_maintenance", 1),
            patch_command=d.get("patch_command"),
            target_build=d.get("target_build"),
        )
        for d in data["dags"]
    )
    raw_exp = data.get("expectations") or {}
    ep = raw_exp.get("extended_protection") or {}
    expectations = Expectations(
        copy_queue_max=raw_exp.get("copy_queue_max", DEFAULT_COPY_QUEUE_MAX),
        replay_queue_max=raw_exp.get("replay_queue_max", DEFAULT_REPLAY_QUEUE_MAX),
        transport_queue_max=raw_exp.get("transport_queue_max", 0),
        content_index_allowed=tuple(raw_exp.get("content_index_allowed", DEFAULT_CONTENT_INDEX_ALLOWED)),
        activation_policy=raw_exp.get("activation_policy", "Unrestricted"),
        build=raw_exp.get("build", "same-across-dag"),
        ep_matrix=ep.get("matrix", "microsoft-default"),
        ep_overrides=dict(ep.get("overrides", {})),
        autodiscover={
            site: AutodiscoverSite(uri=v["uri"], site_scope=tuple(v.get("site_scope", [site])))
            for site, v in (raw_exp.get("autodiscover") or {}).items()
        },
        monitoring_inactive_in_maintenance=raw_exp.get("monitoring_inactive_in_maintenance", False),
        host_volumes=_with_install_volume(raw_exp.get("host") or {}),
        host_install_volume=str((raw_exp.get("host") or {}).get("install_volume", "C:")).upper(),
        host_min_free_gb=(raw_exp.get("host") or {}).get("min_free_gb", 10),
        host_min_free_percent=(raw_exp.get("host") or {}).get("min_free_percent", 10),
        drift_critical=tuple(raw_exp.get("drift_critical", ())),
        cert_warning_days=(raw_exp.get("certificates") or {}).get("warning_days", 30),
        cert_critical_days=(raw_exp.get("certificates") or {}).get("critical_days", 7),
    )
    lab = dict(data["lab"] or {}) if "lab" in data else None
    raw_mm = data.get("maintenance") or {}
    maintenance = MaintenanceSettings(
        poll_interval=raw_mm.get("poll_interval", 10.0),
        wait_timeout=raw_mm.get("wait_timeout", 900),
        no_progress_polls=raw_mm.get("no_progress_polls", 12),
        force_allowed=tuple(raw_mm.get("force_allowed", ())),
    )
    return Inventory(
        maintenance=maintenance,
        file=file,
        sites=tuple(s["name"] for s in data["sites"]),
        servers=servers,
        dags=dags,
        expectations=expectations,
        lab=lab,
        report=dict(data.get("report") or {}),
        waivers=tuple(data.get("waivers") or ()),
        maintenance_windows=tuple(
            MaintenanceWindow(
                start=parse_stamp(w["start"]),
                end=parse_stamp(w["end"]),
                reason=w["reason"],
                by=w["by"],
                server=w.get("server"),
                dag=w.get("dag"),
                target_build=w.get("target_build"),
            )
            for w in data.get("maintenance_windows") or ()
        ),
    )
