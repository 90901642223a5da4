"""`dagcheck doctor`: why a server cannot be checked, layer by layer, with one line of advice.

For each server, in order, stopping at the first layer that fails (a later layer cannot be judged through
a broken earlier one): name resolution, TCP to each endpoint, TLS (chain, name, expiry), authentication
(the mechanisms the server offers and the one used; for Kerberos the SPN asked for and the KDC's answer),
the Exchange session (configuration Microsoft.Exchange, the Exchange version), RBAC (the cmdlets dagcheck
needs that the account's session lacks: Exchange builds each session from the account's role assignments,
so Get-Command there lists only what it may run) and the Windows endpoint (WinRM answers, the account is a
local administrator there).

Logons go through the normal transport, so the main job's rule holds: NTLM/Basic credentials refused by a
server are proven on a second one, and refused twice they are tried on no other server this run (at most two
failed logons, whatever the fleet size).
"""

from __future__ import annotations

import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from dagcheck import discover
from dagcheck.errors import CmdletFailed, InventoryError, RemoteError
from dagcheck.inventory import Server, load_inventory
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.diagnosis import classify
from dagcheck.remote.psrp import PsrpTransport
from dagcheck.remote.psrp_shells import CONFIGURATION
from dagcheck.sources import exchange_servers
from dagcheck.sources.registry import SOURCES
from dagcheck.sources.values import prop

LAYERS = ("name", "tcp", "tls", "auth", "session", "rbac", "windows")
TITLES = {
    "name": "name resolution",
    "tcp": "TCP",
    "tls": "TLS",
    "auth": "authentication",
    "session": "Exchange session",
    "rbac": "RBAC",
    "windows": "Windows endpoint",
}
ADMINISTRATORS_SID = "S-1-5-32-544"  # BUILTIN\Administrators (well-known SID)
# The schemes a server's 401 may offer, per connection.auth (HTTP WWW-Authenticate; WinRM and IIS offer
# Negotiate for Kerberos and NTLM, some listeners Kerberos or NTLM by name, Basic when enabled).
ACCEPTS = {
    "kerberos": ("negotiate", "kerberos"),
    "negotiate": ("negotiate", "kerberos", "ntlm"),
    "ntlm": ("negotiate", "ntlm"),
    "basic": ("basic",),
}
ROLES_ADVICE = (
    "give the account the role that grants them: View-Only Organization Management covers the reads "
    "(README: Your first real run), e.g. Add-RoleGroupMember 'View-Only Organization Management' -Member <account>"
)


def needed_cmdlets() -> list[str]:
    """Every cmdlet the health run (dagcheck.sources.registry.SOURCES on the Exchange endpoint) and discover run in the session:
    derived from the sources themselves, so a new source is checked here without anyone editing a list."""
    names = {c.cmdlet for s in SOURCES.values() if s.endpoint is Endpoint.EXCHANGE for c in s.commands("<server>")}
    return sorted(names | {source.CMDLET for source in discover.SOURCES})


@dataclass(frozen=True)
class Finding:
    layer: str
    ok: bool
    detail: str
    advice: str = ""


@dataclass(frozen=True)
class ServerReport:
    server: str
    findings: tuple[Finding, ...]

    @property
    def failed(self) -> Finding | None:
        return next((f for f in self.findings if not f.ok), None)

    @property
    def ready(self) -> bool:
        return self.failed is None and len(self.findings) == len(LAYERS)


@dataclass(frozen=True)
class _Endpoint:
    label: str  # "Exchange" or "Windows"
    uri: str
    host: str  # the URI's host: the name TLS and Kerberos check
    address: str  # where the TCP connection goes (connect_address, else host)
    port: int
    https: bool


def _endpoints(server: Server) -> list[_Endpoint]:
    out = []
    for label, uri in (("Exchange", server.exchange_uri()), ("Windows", server.windows_uri())):
        parts = urlsplit(uri)
        https = parts.scheme == "https"
        host = parts.hostname or server.fqdn
        out.append(
            _Endpoint(label, uri, host, server.connection.connect_address or host, parts.port or (443 if https else 80), https)
        )
    return out


def _timeout(server: Server) -> float:
    return float(min(10, server.connection.read_timeout))


# ---- the layers ----------------------------------------------------------------------------------------


def check_name(server: Server, endpoints: list[_Endpoint]) -> Finding:
    seen = []
    for address in dict.fromkeys(e.address for e in endpoints):
        try:
            infos = socket.getaddrinfo(address, None, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            return Finding(
                "name",
                False,
                f"cannot resolve {address}: {exc.strerror or exc}",
                "fix the DNS record (or this host's resolver), or name the address in connect_address / "
                "connection.endpoints and keep the FQDN in the URI",
            )
        seen.append(f"{address} -> {infos[0][4][0]}")
    return Finding("name", True, ", ".join(seen))


def check_tcp(server: Server, endpoints: list[_Endpoint]) -> Finding:
    for e in endpoints:
        try:
            socket.create_connection((e.address, e.port), timeout=_timeout(server)).close()
        except OSError as exc:
            what = (
                "refused"
                if isinstance(exc, ConnectionRefusedError)
                else ("timed out" if isinstance(exc, TimeoutError | socket.timeout) else str(exc))
            )
            advice = (
                "open TCP from this host to IIS on the server (the /PowerShell virtual directory, 443 by default) "
                "or correct connection.exchange_uri"
                if e.label == "Exchange"
                else "open TCP from this host to the server's WinRM listener (HTTPS 5986: winrm quickconfig "
                "-transport:https; firewall rule 'Windows Remote Management') or correct connection.windows_uri"
            )
            return Finding("tcp", False, f"{e.label} endpoint {e.address}:{e.port} {what}", advice)
    return Finding("tcp", True, ", ".join(f"{e.label} {e.address}:{e.port}" for e in endpoints))


def check_tls(server: Server, endpoints: list[_Endpoint]) -> Finding:
    settings = server.connection
    secured = [e for e in endpoints if e.https]
    if not secured:
        return Finding("tls", True, f"no TLS (HTTP; WSMan message encryption {settings.encryption})")
    if not settings.verify_tls:
        return Finding("tls", True, "NOT verified (verify_tls: false): anyone in the path can pose as the server")
    notes = []
    for e in secured:
        try:
            context = (
                ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else ssl.create_default_context()
            )
        except (OSError, ssl.SSLError) as exc:
            return Finding(
                "tls",
                False,
                f"cannot read connection.ca_bundle {settings.ca_bundle}: {exc}",
                "name a readable PEM file with the issuing CA's certificate",
            )
        try:
            with (
                socket.create_connection((e.address, e.port), timeout=_timeout(server)) as raw,
                context.wrap_socket(raw, server_hostname=e.host) as tls,
            ):
                cert = tls.getpeercert() or {}
        except ssl.SSLCertVerificationError as exc:
            failure = classify(exc.verify_code, exc.verify_message or str(exc), e.host)
            return Finding(
                "tls",
                False,
                f"{e.label} endpoint {e.host}:{e.port}: certificate {failure.part} check failed: {failure.detail}",
                failure.advice,
            )
        except (OSError, ssl.SSLError) as exc:
            return Finding(
                "tls",
                False,
                f"{e.label} endpoint {e.host}:{e.port}: TLS handshake failed: {exc}",
                "check that the endpoint serves HTTPS on that port (an HTTP listener answers garbage)",
            )
        expires = cert.get("notAfter")
        days = int((ssl.cert_time_to_seconds(expires) - time.time()) // 86400) if isinstance(expires, str) else None
        notes.append(f"{e.label} verified for {e.host}" + (f", expires in {days} day(s)" if days is not None else ""))
    return Finding("tls", True, "; ".join(notes))


def offered_schemes(server: Server, endpoint: _Endpoint) -> list[str] | None:
    """The authentication schemes the endpoint's 401 offers (no credentials sent: not a logon), or None when it
    cannot be asked (connect_address: requests cannot connect elsewhere than the URI's host)."""
    if server.connection.connect_address:
        return None
    verify: Any = (server.connection.ca_bundle or True) if server.connection.verify_tls else False
    answer = requests.post(
        endpoint.uri,
        data=b"",
        timeout=_timeout(server),
        verify=verify,
        headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
    )
    headers = (
        answer.raw.headers.getlist("WWW-Authenticate")
        if hasattr(answer.raw.headers, "getlist")
        else [answer.headers.get("WWW-Authenticate", "")]
    )
    return [h.split(" ", 1)[0] for h in headers if h]


def kerberos_ticket(host: str) -> tuple[bool, str]:
    """Ask the KDC for a service ticket to HTTP/<host>, as the transport will: (got it, what the KDC said)."""
    try:
        import spnego

        client = spnego.client(hostname=host, service="HTTP", protocol="kerberos")
        client.step()
    except Exception as exc:  # gssapi missing, no ticket, unknown SPN, clock skew: the library's own words
        return False, " ".join(str(exc).split())[:300]
    return True, "service ticket issued"


def check_auth_offer(server: Server, endpoint: _Endpoint) -> Finding | None:
    """Before any logon: the configured mechanism is one the server offers (None when that cannot be asked)."""
    auth = server.connection.auth
    if auth == "certificate":
        return None
    try:
        offered = offered_schemes(server, endpoint)
    except requests.RequestException:
        offered = None  # the logon itself will say
    if offered is not None and not any(s.lower() in ACCEPTS.get(auth, ()) for s in offered):
        return Finding(
            "auth",
            False,
            f"the server offers {', '.join(offered) or 'nothing'}; connection.auth is {auth}",
            "set connection.auth to a mechanism it offers (kerberos/negotiate need Negotiate), or enable "
            f"{auth} on the server's /PowerShell virtual directory",
        )
    said = ""
    if auth == "kerberos":
        got, said = kerberos_ticket(endpoint.host)
        if not got:
            install = "python-gssapi" in said.lower() or "no module named" in said.lower()
            return Finding(
                "auth",
                False,
                f"Kerberos: SPN HTTP/{endpoint.host}: "
                + (f"no ticket asked, this host lacks the Kerberos library: {said}" if install else f"the KDC answered: {said}"),
                (
                    "install the Kerberos extra: apt-get install krb5-user libkrb5-dev gcc python3-dev, then pip install "
                    "'dagcheck[kerberos]' (README: Kerberos from Linux); then kinit and check "
                    f"`setspn -Q HTTP/{endpoint.host}`"
                )
                if install
                else "get a ticket (kinit user@REALM or a keytab), check krb5.conf's realm and that "
                f"`setspn -Q HTTP/{endpoint.host}` finds the server's account",
            )
        said = f"; SPN HTTP/{endpoint.host}: {said}"
    offer = f"offered {', '.join(offered)}" if offered is not None else "offer not probed (connect_address)"
    return Finding("auth", True, f"{offer}; using {auth}{said}")


def _session_failure(transport: PsrpTransport, server: Server, exc: RemoteError, auth_note: str) -> Finding:
    blind = transport.states.blind().get(server.name.lower())
    if blind is not None and blind.kind == "authentication":
        return Finding(
            "auth",
            False,
            f"{auth_note}: {exc.reason}",
            "check the account and its password (the variables named by username_env/password_env); "
            "refused by a second server too, it is tried on no other this run, so a lockout policy sees at most two "
            "failed logons",
        )
    if blind is not None and blind.kind == "tls":
        return Finding("tls", False, exc.reason, "see the TLS advice above")
    return Finding(
        "session",
        False,
        f"configuration {CONFIGURATION[Endpoint.EXCHANGE]}: {exc.reason}",
        "check the URI path (/PowerShell), the PowerShell virtual directory in IIS, and that the account "
        "may use remote PowerShell (Set-User <account> -RemotePowerShellEnabled $true)",
    )


def check_session(transport: PsrpTransport, server: Server, auth: Finding | None) -> list[Finding]:
    """Authentication (the logon), the Exchange session, and RBAC: one Get-Command in the session opens it."""
    auth_note = auth.detail if auth else f"using {server.connection.auth}"
    try:
        listed = transport.run(server.name, Endpoint.EXCHANGE, Command.of("Get-Command"))
    except CmdletFailed as exc:  # the logon worked and the session answered: it refused the command itself
        return [
            Finding("auth", True, auth_note),
            Finding(
                "session",
                False,
                f"configuration {CONFIGURATION[Endpoint.EXCHANGE]}: Get-Command failed: {exc.reason}",
                "check that the account may use remote PowerShell (Set-User <account> -RemotePowerShellEnabled $true)",
            ),
        ]
    except RemoteError as exc:
        return [_session_failure(transport, server, exc, auth_note)]
    who = transport._creds(server).username or "the Kerberos/certificate identity"  # noqa: SLF001 - same package
    found = [Finding("auth", True, f"{auth_note}; logged on as {who}")]
    have = {str(prop(o, "Name") or o).lower() for o in listed}
    version = "its version unknown (Get-ExchangeServer is not in the session)"
    if "get-exchangeserver" in have:
        try:
            [me] = [
                exchange_servers.parse(o)
                for o in transport.run(server.name, Endpoint.EXCHANGE, Command.of(exchange_servers.CMDLET, Identity=server.fqdn))
            ]
            version = f"Exchange {me.build}"
        except (RemoteError, ValueError) as exc:
            version = f"its version unreadable ({exc})"
    found.append(Finding("session", True, f"configuration {CONFIGURATION[Endpoint.EXCHANGE]}; {version}"))
    missing = [c for c in needed_cmdlets() if c.lower() not in have]
    if missing:
        found.append(
            Finding(
                "rbac",
                False,
                f"the session lacks {', '.join(missing)} (of {len(needed_cmdlets())} cmdlets dagcheck runs)",
                ROLES_ADVICE,
            )
        )
    else:
        found.append(Finding("rbac", True, f"all {len(needed_cmdlets())} cmdlets dagcheck runs are in the session"))
    return found


def check_windows(transport: PsrpTransport, server: Server) -> Finding:
    try:
        result = transport.run_cmd(server.name, "whoami /groups")
    except RemoteError as exc:
        return Finding(
            "windows",
            False,
            f"WinRM ({server.windows_uri()}): {exc.reason}",
            "check the WinRM HTTPS listener (winrm enumerate winrm/config/listener) and that the account "
            "is a local administrator there (the default endpoint admits Administrators)",
        )
    if ADMINISTRATORS_SID not in result.stdout:
        return Finding(
            "windows",
            False,
            "WinRM answers, but the account is not in BUILTIN\\Administrators there",
            "add it to the server's local Administrators group: Get-ClusterNode, the registry and sc.exe reads need it",
        )
    return Finding("windows", True, "WinRM answers; the account is a local administrator")


def diagnose(transport: PsrpTransport, server: Server) -> ServerReport:
    """Every layer in order, stopping at the first that fails."""
    endpoints = _endpoints(server)
    findings: list[Finding] = []
    steps: list[Callable[[], list[Finding]]] = [
        lambda: [check_name(server, endpoints)],
        lambda: [check_tcp(server, endpoints)],
        lambda: [check_tls(server, endpoints)],
    ]
    for step in steps:
        findings += step()
        if not findings[-1].ok:
            return ServerReport(server.name, tuple(findings))
    offer = check_auth_offer(server, endpoints[0])
    if offer is not None and not offer.ok:
        return ServerReport(server.name, (*findings, offer))
    findings += check_session(transport, server, offer)
    if not findings[-1].ok:
        return ServerReport(server.name, tuple(findings))
    findings.append(check_windows(transport, server))
    return ServerReport(server.name, tuple(findings))


# ---- the table -----------------------------------------------------------------------------------------


def render(reports: list[ServerReport]) -> str:
    """One row per server (ok / FAIL / - not reached per layer), then one line of advice per failure."""
    width = max([len("server")] + [len(r.server) for r in reports])
    head = "server".ljust(width) + "  " + "  ".join(layer.ljust(7) for layer in LAYERS) + "  verdict"
    lines = [head, "-" * len(head)]
    for r in reports:
        cells = []
        for layer in LAYERS:
            found = [f for f in r.findings if f.layer == layer]
            cells.append(("-" if not found else "ok" if all(f.ok for f in found) else "FAIL").ljust(7))
        verdict = "ready" if r.ready else f"not ready: {TITLES[r.failed.layer]}" if r.failed else "not ready"
        lines.append(r.server.ljust(width) + "  " + "  ".join(cells) + "  " + verdict)
    for r in reports:
        failed = r.failed
        if failed is not None:
            lines.append(f"{r.server}: {TITLES[failed.layer]}: {failed.detail}. Fix: {failed.advice}")
        else:
            session = next((f.detail for f in r.findings if f.layer == "session"), "")
            lines.append(f"{r.server}: ready ({session})")
    return "\n".join(lines)


def run(servers: list[Server], credentials: dict[str, Credentials] | None = None) -> list[ServerReport]:
    """Each server in turn, through one transport (so a rejected account is tried once, not once per server)."""
    transport = PsrpTransport({s.name: s for s in servers}, credentials=credentials)
    try:
        return [diagnose(transport, s) for s in servers]
    finally:
        transport.close()


def main(inventory_path: str | None, only: list[str]) -> int:
    """0 when every server is ready; 8 when some is not (as a run that could not check a server); 4 on a bad
    inventory or an unknown --server."""
    from dagcheck import locate

    found = locate.find(inventory_path)
    try:
        inventory = load_inventory(found.path)
    except InventoryError as exc:
        print(f"dagcheck doctor: {exc}", file=sys.stderr)
        return 4
    if found.is_embedded_lab or inventory.lab is not None:
        print(
            locate.lab_notice(found)
            if found.is_embedded_lab
            else f"dagcheck doctor: {inventory.file} is a {locate.SIMULATED}, not a real organisation"
        )
    wanted = {s.lower() for s in only}
    unknown = wanted - {s.name.lower() for s in inventory.servers}
    if unknown:
        print(f"dagcheck doctor: --server {', '.join(sorted(unknown))}: not in {inventory.file}", file=sys.stderr)
        return 4
    servers = [s for s in inventory.servers if not wanted or s.name.lower() in wanted]
    lab, credentials = None, None
    if inventory.lab is not None:
        from dagcheck.lab.embedded import start_embedded

        lab = start_embedded(inventory)
        servers, credentials = lab.endpoints(servers)
    try:
        reports = run(servers, credentials)
    finally:
        if lab is not None:
            lab.stop()
    print(render(reports))
    return 0 if all(r.ready for r in reports) else 8
