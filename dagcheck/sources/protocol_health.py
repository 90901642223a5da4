"""The client protocols' health pages: https://<server>/<vdir>/healthcheck.htm, asked from the jump host.

Exchange 2013 and later answer these pages anonymously from the front end's HTTP proxy, per protocol,
while Managed Availability finds that protocol healthy (the page is generated in memory, there is no
file in IIS). Microsoft tells load balancers to monitor exactly these pages (Learn, "Load balancer marks
Client Access server as down in an Exchange Server 2013 Cumulative Update 6 environment", KB 3002351:
"configure the monitor to use a website that resembles https://CAS/protocol/healthcheck.htm"). A
healthy page is "200 OK" followed by the answering server's FQDN (the Exchange team's load-balancing
guidance and field reports; the exact markup `200 OK<br/>FQDN` is guessed: see
docs/remote-session-shapes.md). A protocol whose health set is unhealthy, or whose <Protocol>Proxy
component is Inactive, does not answer 200.

Only the health page is asked: no logon is tried (OWA's forms logon, EWS/MAPI/RPC/OAB's
Negotiate, ActiveSync's Basic or OAuth, Autodiscover's POST all need a mailbox's credentials), so a
protocol that answers its health page can still refuse every user: Test-MAPIConnectivity (DAG-DB-004)
covers the store, nothing here covers a logon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dagcheck.errors import ConnectionFailed
from dagcheck.remote.base import HttpAnswer
from dagcheck.remote.https import web_request
from dagcheck.sources import ProbeContext
from dagcheck.sources.base import ProbeSource

HEALTH_PAGE = "healthcheck.htm"


@dataclass(frozen=True)
class Protocol:
    """One client protocol: the name administrators use, its virtual directory, its proxy component."""

    name: str
    vdir: str
    component: str  # the ServerComponentState that gates its front-end proxy

    @property
    def path(self) -> str:
        return f"{self.vdir}/{HEALTH_PAGE}"


# The eight pages Microsoft's load-balancing guidance lists (KB 3002351; the Exchange team blog's
# "Load Balancing in Exchange 2013"): vdir paths as IIS names them on the Default Web Site.
PROTOCOLS = (
    Protocol("OWA", "owa", "OwaProxy"),
    Protocol("ECP", "ecp", "EcpProxy"),
    Protocol("EWS", "EWS", "EwsProxy"),
    Protocol("Microsoft-Server-ActiveSync", "Microsoft-Server-ActiveSync", "ActiveSyncProxy"),
    Protocol("Autodiscover", "Autodiscover", "AutoDiscoverProxy"),
    Protocol("MAPI", "mapi", "MapiProxy"),
    Protocol("RPC", "rpc", "RpcProxy"),
    Protocol("OAB", "OAB", "OabProxy"),
)

# What a logon to each protocol would need, and so was not tried (shown with a failure, and in the rationale).
NOT_TRIED = {
    "OWA": "a forms-based logon to a mailbox",
    "ECP": "a forms-based logon to a mailbox",
    "EWS": "an authenticated SOAP request (Negotiate/NTLM or OAuth)",
    "Microsoft-Server-ActiveSync": "an authenticated OPTIONS/Sync request (Basic or OAuth)",
    "Autodiscover": "an authenticated Autodiscover POST",
    "MAPI": "an authenticated MAPI/HTTP Connect (Negotiate)",
    "RPC": "an authenticated RPC over HTTP session (Negotiate/NTLM)",
    "OAB": "an authenticated OAB download (Negotiate)",
}
_TAGS = re.compile(r"<[^>]*>")
_FQDN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})+$")


@dataclass(frozen=True)
class ProtocolHealth:
    """One protocol's health page on one server, as the jump host got it."""

    server: str
    protocol: str
    url: str
    status: int | None  # None: no HTTP answer (error says why)
    seconds: float
    first_line: str  # of the body, tags removed
    answered_by: str | None  # the FQDN the page names (the server that answered)
    expected_fqdn: str | None  # Get-ExchangeServer's Fqdn; None when it could not be read
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.server}:{self.protocol}"


def first_line(body: str) -> str:
    """The body's first non-empty line with HTML tags turned into line breaks, at most 200 characters."""
    text = _TAGS.sub("\n", body)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line[:200]


def answered_by(body: str) -> str | None:
    """The FQDN a health page names after its "200 OK" (the last host name in the body), if any."""
    words = [w.strip() for w in _TAGS.sub("\n", body).split()]
    names = [w for w in words if _FQDN.match(w) and not w.replace(".", "").isdigit()]
    return names[-1] if names else None


def parse(answer: HttpAnswer, server: str, protocol: Protocol, expected_fqdn: str | None) -> ProtocolHealth:
    return ProtocolHealth(
        server.lower(),
        protocol.name,
        answer.url,
        answer.status,
        round(answer.seconds, 3),
        first_line(answer.body),
        answered_by(answer.body) if answer.status == 200 else None,
        expected_fqdn,
        answer.error,
    )


def describe(server: str) -> list[str]:
    """The requests, as an administrator would repeat them (README's catalogue, dry runs)."""
    return [web_request(f"https://{server}/{p.path}").render() for p in PROTOCOLS]


def collect(ctx: ProbeContext) -> list[ProtocolHealth]:
    """Every protocol's page on one server. Get-ExchangeServer is read first from the same snapshot (no
    second call): its Fqdn is the name the pages must give, and when the server could not be reached for it
    (a connection failure: the server is blind for this run) the pages are not asked and this source fails
    with that same reason. Any other failure of that read only leaves the FQDN unchecked."""
    error = ctx.failed("exchange_server")
    if isinstance(error, ConnectionFailed):
        raise error
    fqdn = ctx.get("exchange_server")[0].fqdn if error is None else None
    pages = ctx.https()
    return [parse(pages.get(p.path), ctx.server, p, fqdn) for p in PROTOCOLS]


SOURCE = ProbeSource("protocol_health", describe, collect)
