"""The protocols' health pages each simulated server answers: GET /<vdir>/healthcheck.htm.

On a real server these pages are generated in memory by the front end's HTTP proxy, per protocol,
anonymously; they answer "200 OK" and the server's FQDN while the protocol is healthy (Learn, KB 3002351,
"Load balancer marks Client Access server as down ... Cumulative Update 6": monitor
https://CAS/protocol/healthcheck.htm), and not while the protocol's proxy component is Inactive (a
server in maintenance, ServerWideOffline) or its health set is unhealthy. Guessed, with no capture
here: the exact markup of the 200 body (`200 OK<br/>FQDN`) and that an unhealthy protocol answers
HTTP 503 with a short "Service Unavailable" HTML body (field reports only say "not 200").

The lab's own table below (vdir -> proxy component) is written from Exchange's component list
(EXCHANGE-NOTES.md §4.1), not from dagcheck's sources.
"""

from __future__ import annotations

from dagcheck.lab.state import Organization

# vdir (lower case, as IIS matches it) -> (the protocol's name in faults, its proxy component)
PAGES = {
    "owa": ("OWA", "OwaProxy"),
    "ecp": ("ECP", "EcpProxy"),
    "ews": ("EWS", "EwsProxy"),
    "microsoft-server-activesync": ("Microsoft-Server-ActiveSync", "ActiveSyncProxy"),
    "autodiscover": ("Autodiscover", "AutoDiscoverProxy"),
    "mapi": ("MAPI", "MapiProxy"),
    "rpc": ("RPC", "RpcProxy"),
    "oab": ("OAB", "OabProxy"),
}
PAGE = "healthcheck.htm"
UNAVAILABLE = b"<html><head><title>Service Unavailable</title></head><body>Service Unavailable</body></html>"


def answer(org: Organization, server_name: str, path: str) -> tuple[int, bytes, str] | None:
    """(status, body, content type) for a health page of this server; None when path is no health page."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) != 2 or parts[1].lower() != PAGE or parts[0].lower() not in PAGES:
        return None
    protocol, component = PAGES[parts[0].lower()]
    with org.lock:
        server = org.server(server_name)
        unhealthy = any(
            str(f.get("protocol", "")).lower() == protocol.lower() for f in org.faults_matching("protocol_unhealthy", server.name)
        )
        if unhealthy or server.component_state(component) != "Active":
            return 503, UNAVAILABLE, "text/html"
        return 200, f"200 OK<br/>{server.fqdn}".encode(), "text/html"
