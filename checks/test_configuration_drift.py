"""Configuration drift across maintenance: what a CU or a repair changed that nobody asked it to."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.drift import AREAS, BaselineError, Difference, Drift
from dagcheck.sources.exchange_servers import ExchangeServer


def _listed(differences: list[Difference]) -> str:
    return "; ".join(d.describe() for d in differences)


@check(
    "DAG-DRIFT-001",
    "Settings the inventory expects are as they were before maintenance",
    severity="critical",
    rationale="Setup rewrites IIS and virtual-directory configuration: a CU can reset Extended Protection, SSL "
    "flags, the Autodiscover SCP or the activation policy to its defaults. These are settings the inventory "
    "states an expectation for (extended_protection, autodiscover, activation_policy, and any area named in "
    "expectations.drift_critical); compared with the baseline saved before entering maintenance, any change "
    "is a regression the patch introduced.",
    remediation="Restore each setting listed to its value before the patch (e.g. ExchangeExtendedProtectionManagement.ps1 "
    "for Extended Protection, Set-ClientAccessService -AutoDiscoverServiceInternalUri for the SCP), then re-run "
    "pytest --phase postflight --server {server}",
    phases=("postflight",),
    source="exchange_server",
    per_server=True,
)
def test_expected_settings_unchanged(item: tuple[ExchangeServer, ...], drift: Drift | BaselineError) -> None:
    require(
        not isinstance(drift, BaselineError),
        f"the configuration baseline cannot be read: {drift}",
        expected="a readable baseline saved before entering maintenance",
        actual=str(drift),
    )
    assert isinstance(drift, Drift)
    unread = [f"{AREAS.get(area, area)}: {why}" for area, why in drift.not_compared.items() if area in drift.critical_areas]
    require(
        not unread,
        f"{drift.server}: could not compare {'; '.join(unread)}",
        expected="every expected setting compared with its baseline",
        actual="; ".join(unread),
    )
    changed = drift.critical
    require(
        not changed,
        f"{drift.server}: {len(changed)} expected setting(s) changed across maintenance: {_listed(changed)}",
        expected="as before maintenance (baseline " + drift.baseline_taken.isoformat(timespec="seconds") + ")",
        actual=_listed(changed),
    )


@check(
    "DAG-DRIFT-002",
    "No other configuration changed across maintenance, beyond the build",
    severity="warning",
    rationale="A virtual directory's URL or authentication, a receive connector, the certificate bound to IIS or "
    "SMTP, a component left in another state: a change nobody asked for breaks clients hours later, long after the "
    "post-maintenance checks passed. Every difference from the baseline is listed in the report's Configuration "
    "drift section; the build is the change the maintenance was for.",
    remediation="Review each listed difference: restore it (Set-OwaVirtualDirectory -ExternalUrl ..., "
    "Set-ReceiveConnector ..., Enable-ExchangeCertificate -Services IIS,SMTP ...), or accept it; to make an area "
    "critical, name it in expectations.drift_critical",
    phases=("postflight",),
    source="exchange_server",
    per_server=True,
)
def test_no_unexpected_change(item: tuple[ExchangeServer, ...], drift: Drift | BaselineError) -> None:
    require(
        not isinstance(drift, BaselineError),
        f"the configuration baseline cannot be read: {drift}",
        expected="a readable baseline saved before entering maintenance",
        actual=str(drift),
    )
    assert isinstance(drift, Drift)
    unread = [f"{AREAS.get(area, area)}: {why}" for area, why in drift.not_compared.items() if area not in drift.critical_areas]
    require(
        not unread,
        f"{drift.server}: could not compare {'; '.join(unread)}",
        expected="every setting compared with its baseline",
        actual="; ".join(unread),
    )
    changed = drift.unexpected
    require(
        not changed,
        f"{drift.server}: {len(changed)} setting(s) changed across maintenance: {_listed(changed)}",
        expected="as before maintenance (baseline " + drift.baseline_taken.isoformat(timespec="seconds") + ")",
        actual=_listed(changed),
    )
