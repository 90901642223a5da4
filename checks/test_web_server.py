"""IIS: the two Exchange web sites and every Exchange application pool are running (appcmd over WinRS)."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.sources.iis_state import EXCHANGE_SITES, IisObject

APPCMD = r"%windir%\system32\inetsrv\appcmd.exe"


@check(
    "DAG-IIS-001",
    "Both Exchange web sites are started",
    severity="critical",
    rationale="Every client protocol enters through Default Web Site (the front end's proxy) and is served by "
    "Exchange Back End; either one stopped and OWA, ECP, EWS, ActiveSync, MAPI and Autodiscover fail on the "
    "server while its services all run. Blank or failing OWA/EAC pages are among the symptoms Microsoft lists "
    "after a failed update (Learn, 'Fix failed Exchange Server updates'); appcmd reads the run-time state "
    "(Learn, 'Getting Started with AppCmd.exe').",
    remediation=APPCMD + ' start site "<site>" on {server} (or iisreset), then read the System log for WAS errors',
    phases=("health", "preflight", "postflight"),
    source="iis_state",
    per_server=True,
    select=lambda o: o.kind == "site",
)
def test_exchange_web_sites_started(item: tuple[IisObject, ...]) -> None:
    states = {o.name.lower(): o for o in item}
    server = item[0].server if item else "the server"
    wrong = [
        f"{site} is {states[site.lower()].state}" if site.lower() in states else f"{site} is missing"
        for site in EXCHANGE_SITES
        if site.lower() not in states or states[site.lower()].state != "Started"
    ]
    require(
        not wrong,
        f"on {server}: " + "; ".join(wrong),
        expected="Default Web Site and Exchange Back End Started",
        actual="; ".join(wrong),
        remediation=" ; ".join(
            f'Invoke-Command -ComputerName {server} {{ & $env:windir\\system32\\inetsrv\\appcmd.exe start site "{site}" }}'
            for site in EXCHANGE_SITES
            if site.lower() in states and states[site.lower()].state != "Started"
        )
        or None,
    )


@check(
    "DAG-IIS-002",
    "Every Exchange application pool is started",
    severity="critical",
    rationale="Each protocol runs in its own MSExchange*AppPool (OWA in MSExchangeOWAAppPool, EWS in "
    "MSExchangeServicesAppPool, ...); a stopped pool (IIS's rapid-fail protection after repeated crashes, or a "
    "half-finished update) answers HTTP 503 for that protocol alone, which service checks do not see "
    "(Learn, 'Fix failed Exchange Server updates'; appcmd's APPPOOL state, 'Getting Started with AppCmd.exe').",
    remediation=APPCMD + ' start apppool /apppool.name:"<pool>" on {server}; if it stops again, read the '
    "Application log for the worker process's crash",
    phases=("health", "preflight", "postflight"),
    source="iis_state",
    select=lambda o: o.is_exchange_pool,
)
def test_exchange_app_pool_started(item: IisObject) -> None:
    require(
        item.state == "Started",
        f"application pool {item.name} on {item.server} is {item.state}",
        expected="Started",
        actual=item.state,
        remediation=f"Invoke-Command -ComputerName {item.server} {{ & $env:windir\\system32\\inetsrv\\appcmd.exe "
        f'start apppool /apppool.name:"{item.name}" }}',
    )
