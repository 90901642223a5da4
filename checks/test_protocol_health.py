"""Every client protocol of every server answers its health page: what a load balancer and a user see first."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.sources.protocol_health import NOT_TRIED, ProtocolHealth


@check(
    "DAG-PROTO-001",
    "Every client protocol answers its health page with 200 and the server's FQDN",
    severity="critical",
    rationale="After an update the first symptoms Microsoft lists are OWA/ECP answering HTTP 500 or 400, blank "
    "pages and stopped services (Learn, 'Fix failed Exchange Server updates'); Test-MAPIConnectivity sees none "
    "of them. Each protocol's https://<server>/<vdir>/healthcheck.htm (OWA, ECP, EWS, "
    "Microsoft-Server-ActiveSync, Autodiscover, MAPI, RPC, OAB) answers 200 with the server's FQDN while "
    "Managed Availability finds it healthy, and load balancers take the server out of the pool otherwise "
    "(Learn, KB 3002351 'Load balancer marks Client Access server as down'). Asked from the jump host against "
    "each server, not the load-balanced name, with the inventory's TLS settings. Only the anonymous health "
    "page is asked: no user logon (forms, Negotiate, Basic, OAuth) is tried.",
    remediation="Get-ServerComponentState {server} (the protocol's Proxy component must be Active); "
    "Get-ServerHealth {server} | ? AlertValue -ne Healthy; then the protocol's app pool and IIS logs",
    phases=("health", "postflight"),
    source="protocol_health",
)
def test_protocol_answers_health_page(item: ProtocolHealth) -> None:
    if item.status is None:
        got = f"no answer after {item.seconds:.2f} s: {item.error}"
    else:
        got = f"HTTP {item.status} after {item.seconds:.2f} s" + (f": {item.first_line}" if item.first_line else "")
    untried = f"(not tried: {NOT_TRIED.get(item.protocol, 'a user logon')})"
    require(
        item.status == 200,
        f"{item.protocol} on {item.server} is not healthy: {item.url} gave {got} {untried}",
        expected=f"HTTP 200 naming {item.expected_fqdn or item.server}",
        actual=got,
    )
    require(
        item.answered_by is None or item.expected_fqdn is None or item.answered_by.lower() == item.expected_fqdn.lower(),
        f"{item.protocol}'s health page at {item.url} was answered by {item.answered_by}, not {item.server}: "
        "the request reached another server (a load balancer or DNS alias in health_uri?)",
        expected=str(item.expected_fqdn),
        actual=str(item.answered_by),
    )
