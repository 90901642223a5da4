"""Autodiscover service connection points across AD sites."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.context import DagView
from dagcheck.inventory import Expectations
from dagcheck.sources.client_access_services import ClientAccess


@check(
    "DAG-AUTOD-001",
    "The SCP publishes the expected Autodiscover URI for the server's site",
    severity="critical",
    rationale="Domain-joined Outlook reads AutoDiscoverServiceInternalUri from the SCP; a server name or a "
    "wrong URI sends clients to a certificate warning or to a server that is down for maintenance.",
    remediation="Set-ClientAccessService -Identity {server} -AutoDiscoverServiceInternalUri <expected URI>",
    phases=("health", "preflight", "postflight"),
    source="client_access",
)
def test_scp_uri_is_expected(item: ClientAccess, dag: DagView, expect: Expectations) -> None:
    site = dag.server_info(item.server).site
    wanted = expect.autodiscover.get(site)
    require(
        wanted is not None,
        f"the inventory names no Autodiscover URI for site {site}",
        expected=f"expectations.autodiscover.{site}.uri",
        actual="missing",
    )
    require(
        (item.internal_uri or "").rstrip("/").lower() == wanted.uri.rstrip("/").lower(),  # type: ignore[union-attr]
        f"{item.server} publishes {item.internal_uri}",
        expected=wanted.uri,
        actual=str(item.internal_uri),  # type: ignore[union-attr]
        remediation=f"Set-ClientAccessService -Identity {item.server} -AutoDiscoverServiceInternalUri '{wanted.uri}'",
    )  # type: ignore[union-attr]


@check(
    "DAG-AUTOD-002",
    "AutoDiscoverSiteScope names the sites the server should serve",
    severity="warning",
    rationale="Outlook prefers SCPs whose site scope contains its own AD site; a missing scope makes clients "
    "pick any SCP in the forest, often across a WAN link.",
    remediation="Set-ClientAccessService -Identity {server} -AutoDiscoverSiteScope <sites>",
    phases=("health", "postflight"),
    source="client_access",
)
def test_site_scope_is_expected(item: ClientAccess, dag: DagView, expect: Expectations) -> None:
    site = dag.server_info(item.server).site
    wanted = set(expect.autodiscover[site].site_scope) if site in expect.autodiscover else {site}
    missing = sorted(wanted - set(item.site_scope))
    require(
        not missing,
        f"{item.server}'s AutoDiscoverSiteScope lacks {', '.join(missing)}",
        expected=", ".join(sorted(wanted)),
        actual=", ".join(item.site_scope) or "(empty)",
        remediation=f"Set-ClientAccessService -Identity {item.server} -AutoDiscoverSiteScope "
        f"{','.join(sorted(wanted | set(item.site_scope)))}",
    )


def _uncovered_sites(item: ClientAccess, dag: DagView, exclude: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Sites this server serves that no other available member's SCP serves, and who serves what."""
    served_by: dict[str, list[str]] = {}
    for member, entries in dag.each("client_access", dag.others).items():
        if member in exclude or dag.maintenance_signs(member):
            continue
        for site in entries[0].site_scope:
            served_by.setdefault(site, []).append(member)
    return [s for s in item.site_scope if not served_by.get(s)], served_by


@check(
    "DAG-AUTOD-003",
    "Every site this server serves is still served by another available server",
    severity="critical",
    rationale="While the server is down its SCP still answers for its sites; if no other available server's "
    "SCP names those sites, Outlook in them is sent to the server in maintenance.",
    remediation="Add the site to the target server's scope with Set-ClientAccessService (command in the failure)",
    phases=("preflight", "maintenance"),
    source="client_access",
)
def test_sites_stay_covered(item: ClientAccess, dag: DagView) -> None:
    uncovered, _ = _uncovered_sites(item, dag, {item.server})
    if not uncovered:
        return
    target = dag.target()
    scope = sorted(set(dag.snap(target).get("client_access")[0].site_scope) | set(uncovered)) if target else uncovered
    fix = f"Set-ClientAccessService -Identity {target or '<target>'} -AutoDiscoverSiteScope {','.join(scope)}"
    require(
        False,
        f"site(s) {', '.join(uncovered)} would have no Autodiscover SCP while {item.server} is down; run: {fix}",
        expected="each site also in another available server's AutoDiscoverSiteScope",
        actual=f"only {item.server} serves {', '.join(uncovered)}",
        remediation=fix,
    )
