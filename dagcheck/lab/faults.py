"""Faults are data: each kind is one function that puts the organisation into the faulty state.

Runtime faults (a cmdlet that errors, a slow cmdlet, a dropped connection) are kept in the
organisation's list, which the cmdlet dispatcher and the WSMan server consult
(Organization.faults_matching); they have no state to change. This module acts on the state
only: it imports no cmdlet and no wire code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from dagcheck.lab import iis as lab_iis
from dagcheck.lab import products
from dagcheck.lab.defaults import (
    DOTNET_TLS_KEYS,
    NDP_FULL,
    REBOOT_KEYS,
    SCHANNEL_PROTOCOLS,
    SESSION_MANAGER,
    WINDOWS_NT,
    auth_certificate,
    lab_certificate,
)
from dagcheck.lab.objects import LabCopy, LabDatabase, RequesterEntry
from dagcheck.lab.settings import Fault
from dagcheck.lab.state import Organization

RUNTIME_KINDS = frozenset(
    {
        "cmdlet_error",
        "slow_cmdlet",
        "dropped_connection",
        "throttled",
        "auth_rejected",
        "cmdlet_missing",
        "windows_not_admin",  # server: the account is no administrator there (whoami /groups)
        "malformed_value",  # server, cmdlet, property, value: an answer in no known shape
        "iis_config",  # value denied / truncated: applicationHost.config unreadable (lab.winrs)
        "databases_wont_move",  # server: Active Manager moves none of its active copies away
        # server, url_of, ep_of: the lab's patch (lab.patching) resets that front-end
        # vdir's ExternalUrl and that one's Extended Protection, as a CU can
        "patch_resets_settings",
        "protocol_unhealthy",  # server, protocol (OWA, EWS ...): its healthcheck.htm answers 503
        *{
            # The wire's faults (dagcheck.lab.server answers them; shapes in lab.wirefaults):
            "runspace_quota",  # count: Exchange's PowerShellMaxConcurrency (default 18)
            "shell_quota",  # count: WinRM's MaxShellsPerUser (default 30)
            "idle_timeout",  # seconds: shells idle that long are gone (default 7200)
            "app_pool_recycle",  # count: at that Command on /PowerShell every runspace is gone
            "reboot",  # count, seconds: at that Command the server restarts
            # shape (wirefaults.HOSTILE_SHAPES), action, size_mb: the server answers that
            "hostile_response",
            # server, seconds: Exchange's runspace budget refuses /PowerShell runspaces
            # (Broken pool, "Please wait for N seconds") for that long (lab.budget)
            "runspace_budget_exceeded",
        },
    }
)
# "throttled" (cmdlet, count, value): the first `count` invocations of the cmdlet exceed Exchange's
# PowerShellMaxCmdlets budget and are refused with the user load quota WSMan fault (value: the quota).
_APPLY: dict[str, Callable[[Organization, Fault], None]] = {}


def fault(kind: str) -> Callable[[Callable[[Organization, Fault], None]], Callable[[Organization, Fault], None]]:
    def register(fn: Callable[[Organization, Fault], None]) -> Callable[[Organization, Fault], None]:
        _APPLY[kind] = fn
        return fn

    return register


def apply_fault(org: Organization, f: Fault) -> None:
    if f.kind in RUNTIME_KINDS:
        if f.kind == "malformed_value" and not (f.get("cmdlet") and f.get("property")):
            raise ValueError("lab fault malformed_value needs cmdlet and property (and the value to serve)")
        org.runtime_faults.append(f)
        return
    if f.kind not in _APPLY:
        raise ValueError(f"unknown lab fault kind {f.kind!r}; known: {', '.join(sorted(known_kinds()))}")
    _APPLY[f.kind](org, f)


def known_kinds() -> set[str]:
    return set(_APPLY) | set(RUNTIME_KINDS)


def _db(org: Organization, f: Fault) -> LabDatabase:
    return org.databases[f["database"].lower()]


def _copy(org: Organization, f: Fault) -> LabCopy:
    db = _db(org, f)
    server = f.get("server") or next(c.server for c in db.copies if c.server.lower() != db.active_server.lower())
    copy = db.copy_on(server)
    if copy is None:
        raise ValueError(f"{db.name} has no copy on {server}")
    return copy


@fault("stuck_queue")
def _stuck_queue(org, f):
    server = org.server(f["server"])
    queue = next((q for q in server.queues if q.queue_type == "Delivery"), None)
    if queue is None:
        queue = org.add_queue(server, "Delivery", "SmtpRelayToRemoteActiveDirectorySite", "Site-B")
    queue.message_count = f.get("count", 25)
    queue.status = "Retry"
    queue.stuck = True
    queue.last_error = '451 4.4.0 Primary target IP address responded with: "421 4.4.2 Connection dropped."'


@fault("mail_backlog")
def _backlog(org, f):
    """Mail waiting in a delivery queue that drains as lab time passes (not a failure by itself)."""
    server = org.server(f["server"])
    queue = next((q for q in server.queues if q.queue_type == "Delivery"), None) or org.add_queue(
        server, "Delivery", "SmtpRelayToRemoteActiveDirectorySite", "Site-B"
    )
    queue.message_count = f.get("count", 200)
    queue.status = "Active"


@fault("poison_messages")
def _poison(org, f):
    server = org.server(f["server"])
    queue = server.queue_by_type("Poison") or org.add_queue(server, "Poison", "Undefined", "Poison Message")
    queue.message_count = f.get("count", 1)
    queue.stuck = True


@fault("shadow_queue")
def _shadow(org, f):
    """A shadow queue on another member holding copies of messages whose primary is f['server']."""
    primary = org.server(f["server"])
    holder_name = f.get("value") or next(m for m in org.dag_of(primary).members if m.lower() != primary.name.lower())
    holder = org.server(holder_name)
    queue = org.add_queue(holder, "Shadow", "ShadowRedundancy", primary.fqdn)
    queue.message_count = f.get("count", 3)


@fault("copy_failed")
def _copy_failed(org, f):
    copy = _copy(org, f)
    copy.status = "Failed"
    copy.error_message = "The log copier was unable to communicate with server. The copy of database is in a disconnected state."


@fault("copy_suspended")
def _copy_suspended(org, f):
    copy = _copy(org, f)
    copy.status = "Suspended"
    copy.activation_suspended = True


@fault("copy_queue_high")
def _copy_queue_high(org, f):
    _copy(org, f).copy_queue = f.get("count", 250)


@fault("replay_queue_high")
def _replay_queue_high(org, f):
    _copy(org, f).replay_queue = f.get("count", 5000)


@fault("content_index_failed")
def _ci_failed(org, f):
    _copy(org, f).content_index = "Failed"


@fault("single_copy")
def _single_copy(org, f):
    db = _db(org, f)
    db.copies = [c for c in db.copies if c.server.lower() == db.active_server.lower()]


@fault("component_inactive")
def _component_inactive(org, f):
    """A requester holds a component Inactive; value local_only: only in the registry, while AD says Active
    (the two stores disagree, the newer registry entry wins)."""
    server = org.server(f["server"])
    component, requester = f.get("component", "HubTransport"), f.get("requester", "HealthApi")
    if f.get("value") == "local_only":
        older = org.now() - dt.timedelta(hours=1)
        server.remote_states.setdefault(component, {})[requester] = RequesterEntry("Active", older)
        server.local_states.setdefault(component, {})[requester] = RequesterEntry("Inactive", org.now())
    else:
        org.set_component_state(server, component, requester, "Inactive")


@fault("cluster_node_down")
def _node_down(org, f):
    org.server(f["server"]).cluster_state = "Down"
    org.server(f["server"]).services["ClusSvc"] = "Stopped"


@fault("witness_unavailable")
def _witness(org, f):
    for dag in org.dags.values():
        dag.witness_available = False


@fault("ep_mismatch")
def _ep(org, f):
    """Extended Protection of one IIS application changed from what setup configured; vdir names it as
    the cmdlets do ('owa (Exchange Back End)') or as IIS does ('Exchange Back End/mapi/emsmdb')."""
    server = org.server(f["server"])
    name = f.get("vdir", "Autodiscover (Default Web Site)")
    app, _, site = name.rpartition(" (")
    key = (site.rstrip(")"), app) if app else tuple(name.split("/", 1))
    if key not in server.iis:
        raise ValueError(f"unknown virtual directory {name!r}")
    server.iis[key].token_checking = f.get("value", "Require")


@fault("ep_ip_mitigation")
def _ep_ip_mitigation(org, f):
    """The supported alternative to Extended Protection on the back-end EWS: tokenChecking None and an IIS
    IP allow-list (what ExchangeExtendedProtectionManagement.ps1 -RestrictType EWSBackend leaves);
    value: the allowed addresses or CIDR ranges, comma-separated."""
    server = org.server(f["server"])
    app = server.iis[("Exchange Back End", "EWS")]
    app.token_checking = "None"
    app.ip_allow = [a.strip() for a in str(f.get("value", "192.0.2.0/24,127.0.0.1")).split(",") if a.strip()]


@fault("ep_cmdlet_differs")
def _ep_cmdlet_differs(org, f):
    """The cmdlets report another ExtendedProtectionTokenChecking than IIS has (guessed cause: IIS changed
    past Exchange, the cmdlet's view stale); vdir as for ep_mismatch, value what the cmdlet shows."""
    server = org.server(f["server"])
    name = f.get("vdir", "owa (Default Web Site)")
    app, _, site = name.rpartition(" (")
    key = (site.rstrip(")"), app) if app else tuple(name.split("/", 1))
    if key not in server.iis:
        raise ValueError(f"unknown virtual directory {name!r}")
    server.iis[key].cmdlet_token_checking = f.get("value", "None")


@fault("scp_wrong_uri")
def _scp_uri(org, f):
    org.server(f["server"]).scp_uri = f.get("value", "https://mail.wrong.test/Autodiscover/Autodiscover.xml")


@fault("scp_missing_site")
def _scp_scope(org, f):
    server = org.server(f["server"])
    server.site_scope = [s for s in server.site_scope if s != f.get("site", server.site)]


@fault("build_mismatch")
def _build(org, f):
    server = org.server(f["server"])
    server.exsetup_version = tuple(int(p) for p in f.get("value", "15.2.1544.9").split("."))  # type: ignore[assignment]


@fault("service_stopped")
def _service(org, f):
    org.server(f["server"]).services[f.get("service", "MSExchangeTransport")] = "Stopped"


@fault("replication_check_failed")
def _repl_check(org, f):
    org.server(f["server"]).failing_replication_checks.add(f.get("check", "ClusterNetwork"))


@fault("pending_reboot")
def _pending_reboot(org, f):
    server = org.server(f["server"])
    which = f.get("value", "cbs")
    if which == "file_rename":
        server.registry[SESSION_MANAGER]["PendingFileRenameOperations"] = (
            "REG_MULTI_SZ",
            ["\\??\\C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin\\x.dll.old", ""],
        )
    elif which in ("exchange_setup", "exchange_setup_done"):
        # Exchange setup's UpdateExeVolatile: Flags non-zero while its reboot is due; a key left with Flags 0
        # after the reboot means nothing (HealthChecker and setup read the value, not the key).
        server.registry[REBOOT_KEYS["exchange_setup"]] = {"Flags": ("REG_DWORD", 1 if which == "exchange_setup" else 0)}
    elif which == "ccm":
        # The Configuration Manager client is installed and has a software update waiting for a restart.
        server.ccm_client = {"RebootPending": True, "IsHardRebootPending": False}
    else:
        server.registry[REBOOT_KEYS[which]] = {}


@fault("ssl_offloading_on")
def _ssl_offloading_on(org, f):
    """Set-OutlookAnywhere -SSLOffloading $true on the server (TLS ended at a load balancer)."""
    org.server(f["server"]).ssl_offloading = True


@fault("low_disk")
def _low_disk(org, f):
    server = org.server(f["server"])
    volume = f.get("volume", "C:")
    _, total = server.volumes[volume]
    server.volumes[volume] = (int(float(f.get("value", "2")) * 1024**3), total)


@fault("dotnet_outdated")
def _dotnet(org, f):
    org.server(f["server"]).registry[NDP_FULL]["Release"] = ("REG_DWORD", int(f.get("value", "461814")))


MAINTENANCE_STEPS = ("drain", "redirect", "pause", "block", "offline")


@fault("in_maintenance")
def _in_maintenance(org, f):
    """Put a server in the state the maintenance procedure leaves it in (for maintenance-phase checks);
    `value` lists steps to leave out, comma-separated: drain, redirect, pause, block, offline."""
    server = org.server(f["server"])
    skip = {s.strip() for s in str(f.get("value", "")).split(",") if s.strip()}
    unknown = skip - set(MAINTENANCE_STEPS)
    if unknown:
        raise ValueError(f"in_maintenance: unknown step(s) {sorted(unknown)}; steps: {', '.join(MAINTENANCE_STEPS)}")
    dag = org.dag_of(server)
    if "drain" not in skip:
        org.set_component_state(server, "HubTransport", "Maintenance", "Draining")
    if "redirect" not in skip:
        for q in server.queues:
            if q.queue_type not in ("Poison", "Shadow") and not q.stuck:
                q.message_count = 0
    if "pause" not in skip:
        server.cluster_state = "Paused"
        if dag is not None and dag.primary_active_manager.lower() == server.name.lower():
            dag.primary_active_manager = next(m for m in dag.members if org.server(m).cluster_state == "Up")
    if "block" not in skip:
        server.activation_policy = "Blocked"
        server.move_now = True
        for db in org.databases.values():
            if db.active_server.lower() == server.name.lower():
                target = org.best_activation_target(db, exclude=server.name)
                if target is not None:
                    org.switchover(db, target)
    if "offline" not in skip:
        org.set_component_state(server, "ServerWideOffline", "Maintenance", "Inactive")


@fault("health_set_unhealthy")
def _health_set_unhealthy(org, f):
    """A Managed Availability health set turns Unhealthy on a server: its first monitor (or the one named by
    value) alerts, as when its probe fails (e.g. OwaSelfTestProbe's request to /owa/exhealth.check)."""
    server = org.server(f["server"])
    health_set = f.get("health_set", "OWA.Protocol")
    monitors = [m for hs, m, _ in products.HEALTH_MONITORS if hs.lower() == health_set.lower()]
    if not monitors:
        known = sorted({hs for hs, _, _ in products.HEALTH_MONITORS})
        raise ValueError(f"health_set_unhealthy: unknown health set {health_set!r}; the lab has {', '.join(known)}")
    monitor = next((m for m in monitors if m.lower() == str(f.get("value", "")).lower()), monitors[0])
    canonical = next(hs for hs, m, _ in products.HEALTH_MONITORS if m == monitor)
    server.unhealthy_monitors[(canonical, monitor)] = org.now()


@fault("app_pool_stopped")
def _app_pool_stopped(org, f):
    """An IIS application pool stopped (WAS stops a pool after repeated worker crashes, its rapid-fail
    protection; a failed CU can leave one stopped): appcmd lists it state:Stopped."""
    server = org.server(f["server"])
    pool = f.get("pool", "MSExchangeOWAAppPool")
    match = next((p for p in lab_iis.app_pools(server) if p.lower() == pool.lower()), None)
    if match is None:
        raise ValueError(
            f"app_pool_stopped: {server.name} has no application pool {pool!r}; it has {', '.join(lab_iis.app_pools(server))}"
        )
    server.stopped_iis.add(match)


@fault("web_site_stopped")
def _web_site_stopped(org, f):
    """One of the two Exchange web sites stopped (appcmd stop site): site "Default Web Site" or "Exchange Back End"."""
    server = org.server(f["server"])
    site = next((s for s in products.WEB_SITES if s.lower() == str(f.get("site", products.BACK_END)).lower()), None)
    if site is None:
        raise ValueError(f"web_site_stopped: site must be one of {', '.join(products.WEB_SITES)}")
    server.stopped_iis.add(site)


@fault("service_disabled")
def _service_disabled(org, f):
    """A service's start type set to Disabled, as an interrupted Exchange setup leaves its services (it disables
    them while it runs): it runs now, if it was running, and will not start after the next restart. Combine
    with service_stopped for the stopped-and-disabled state a failed setup also leaves."""
    server = org.server(f["server"])
    name = f.get("service", "MSExchangeIS")
    match = next((s for s in server.services if s.lower() == name.lower()), None)
    if match is None:
        raise ValueError(f"service_disabled: {server.name} has no service {name!r}")
    server.start_types[match] = "Disabled"


@fault("auth_certificate_expired")
def _auth_certificate_expired(org, f):
    """The organisation's Auth certificate (Get-AuthConfig's current one) has expired on every server: it is
    replaced by one of the same subject whose NotAfter passed a day ago (wall clock: clients judge it so)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expired = auth_certificate(now - dt.timedelta(days=5 * 365 + 1), now - dt.timedelta(days=1))
    old = org.auth_config.current_thumbprint
    for server in org.servers.values():
        server.certificates = [expired if c.thumbprint == old else c for c in server.certificates]
    org.auth_config.current_thumbprint = expired.thumbprint


@fault("certificate_expiring")
def _certificate_expiring(org, f):
    """The server's certificate bound to IIS (and SMTP) expires `days` days from now (default 5): renewed
    too late, the same names, a new thumbprint, bound where the old one was."""
    server = org.server(f["server"])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for i, cert in enumerate(server.certificates):
        if "IIS" in cert.services:
            names = cert.domains or [cert.subject.removeprefix("CN=")]
            server.certificates[i] = lab_certificate(
                names[0], names, cert.services, now - dt.timedelta(days=360), now + dt.timedelta(days=float(f.get("days", 5)))
            )
            return
    raise ValueError(f"certificate_expiring: {server.name} has no certificate bound to IIS")


@fault("os_version_mismatch")
def _os_version_mismatch(org, f):
    """The server runs another Windows Server version than the rest of its DAG (`value`: its build, default
    17763, Windows Server 2019; the lab's servers run 2022)."""
    build = str(f.get("value", "17763"))
    names = {
        "14393": "Windows Server 2016",
        "17763": "Windows Server 2019",
        "20348": "Windows Server 2022",
        "26100": "Windows Server 2025",
    }
    registry = org.server(f["server"]).registry[WINDOWS_NT]
    registry["CurrentBuildNumber"] = ("REG_SZ", build)
    registry["ProductName"] = ("REG_SZ", f"{names.get(build, 'Windows Server')} Datacenter")


@fault("tls_setting_mismatch")
def _tls_setting_mismatch(org, f):
    """The server's TLS differs from its DAG's: TLS 1.0 turned back on for the server side (`value`
    "dotnet": .NET 4's SchUseStrongCrypto removed instead)."""
    registry = org.server(f["server"]).registry
    if f.get("value") == "dotnet":
        registry[DOTNET_TLS_KEYS[0]].pop("SchUseStrongCrypto", None)
        return
    registry[f"{SCHANNEL_PROTOCOLS}\\TLS 1.0\\Server"] = {"Enabled": ("REG_DWORD", 1), "DisabledByDefault": ("REG_DWORD", 0)}


@fault("clock_skew")
def _clock_skew(org, f):
    """The server's Windows clock runs `seconds` ahead (negative: behind) of real time (default 300)."""
    org.server(f["server"]).clock_offset = float(f.get("seconds", 300))
