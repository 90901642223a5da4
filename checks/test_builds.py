"""Builds: a complete CU on each server, the same build across the DAG, a current SU, a supported product."""

from __future__ import annotations

import datetime as dt

import pytest

from dagcheck.catalogue import check, require
from dagcheck.collect import Snapshot
from dagcheck.context import DagView
from dagcheck.inventory import Expectations
from dagcheck.maintenance.planned import current_windows
from dagcheck.rules.builds import Tables, currency, name, parse_build, rolling_parity, same_cu, show, support
from dagcheck.rules.dag import odd_ones_out
from dagcheck.sources.exsetup import FileVersion


@check(
    "DAG-BUILD-001",
    "AdminDisplayVersion and ExSetup.exe agree on the CU",
    severity="critical",
    rationale="AdminDisplayVersion (AD) shows the CU; ExSetup.exe's file version adds the SU. A different CU in "
    "the two means setup stopped half-way and the server runs a mix of binaries and AD schema.",
    remediation="Run the CU's Setup.exe /m:upgrade /IAcceptExchangeServerLicenseTerms_DiagnosticDataON again on {server}",
    phases=("health", "preflight", "postflight"),
    source="exsetup",
)
def test_admin_display_version_matches_exsetup(item: FileVersion, snapshot: Snapshot, exchange_tables: Tables) -> None:
    adv = snapshot.get("exchange_server")[0].admin_display_version
    require(
        same_cu(adv, item.version),
        f"AdminDisplayVersion {name(adv, exchange_tables)} but ExSetup.exe {name(item.version, exchange_tables)}",
        expected=f"ExSetup.exe {show(adv)[: -len(str(adv[3]))]}x",
        actual=show(item.version),
    )


@check(
    "DAG-BUILD-002",
    "Every DAG member runs the same build (or the inventory's expected one)",
    severity="critical",
    rationale="Members on different CUs or SUs fail over into different code; Microsoft supports mixed builds "
    "only while an upgrade is in progress. The member that differs from the majority is the one flagged. During "
    "a current maintenance window of the DAG or a member, each member must be on the old or the target build.",
    remediation="Install the missing CU/SU on the members that lag behind",
    phases=("health", "postflight"),
    source="exsetup",
)
def test_build_same_across_dag(item: FileVersion, dag: DagView, expect: Expectations, exchange_tables: Tables) -> None:
    if expect.build != "same-across-dag":
        wanted = parse_build(expect.build)
        require(
            item.version == wanted,
            f"{dag.server} runs {name(item.version, exchange_tables)}",
            expected=name(wanted, exchange_tables),
            actual=show(item.version),
        )
        return
    builds = {m: v[0].version for m, v in dag.each("exsetup", reachable_only=True).items()}
    dag_spec = dag.inventory.dag_of(dag.server)
    windows = current_windows(dag.inventory, dag_spec.name if dag_spec else None, dag.now)
    if windows:
        # A patch window in progress: mixed builds are expected, old or target, the patched ones agreeing.
        declared = next((w.target_build for w in windows if w.target_build), None)
        parity = rolling_parity(builds, parse_build(declared) if declared else None)
        dag.notes.append(
            f"{dag_spec.name if dag_spec else dag.server} patch window ({windows[0].describe()}): {parity.progress()}"
        )
        # A patched member is fine; the one(s) off the old/target pair are flagged.
        require(
            item.version == parity.target or parity.problem is None,
            f"{dag.server} runs {show(item.version)} during the patch window: {parity.problem}",
            expected=f"the old build or the target {show(parity.target)}",
            actual=show(item.version),
        )
        return
    odd = odd_ones_out(builds)
    others = ", ".join(f"{m}={show(b)}" for m, b in builds.items())  # type: ignore[arg-type]
    require(
        dag.server.lower() not in odd,
        f"{dag.server} runs {name(item.version, exchange_tables)}, unlike the DAG ({others})",
        expected="the build the other members run",
        actual=show(item.version),
    )


@check(
    "DAG-BUILD-003",
    "The server runs the latest Security Update of a supported CU",
    severity="warning",
    rationale="A server behind the latest SU of its CU misses published fixes. The build table "
    "(dagcheck/data/exchange_builds.csv, or --build-table) says which SU is the latest, as of its date. A product "
    "or CU out of support is DAG-BUILD-004's finding, not this check's: this one is skipped there.",
    remediation="Install the latest SU for the server's CU (or move to a supported CU) on {server}",
    phases=("health", "preflight"),
    source="exsetup",
)
def test_build_is_current(item: FileVersion, exchange_tables: Tables, run_date: dt.date) -> None:
    if support(item.version, run_date, exchange_tables).problem is not None:
        pytest.skip("the product or CU is out of support: DAG-BUILD-004 reports it")
    problem = currency(item.version, exchange_tables)
    require(problem is None, str(problem), expected="latest SU of a supported CU", actual=name(item.version, exchange_tables))


@check(
    "DAG-BUILD-004",
    "The server runs a supported Exchange product and CU",
    severity="critical",
    rationale="Exchange 2016 and 2019 left support on 2025-10-14 and their paid Extended Security Updates have "
    "ended: no more security fixes, no support cases. Exchange Server SE is the supported product. The lifecycle "
    "table (dagcheck/data/exchange_lifecycle.csv, or --lifecycle-table) gives each product's and CU's end of "
    "support and what to move to, as of its date.",
    remediation="Move {server} to Exchange Server SE (see the lifecycle table's move_to for its product and CU)",
    phases=("health", "preflight"),
    source="exsetup",
)
def test_product_and_cu_supported(item: FileVersion, exchange_tables: Tables, run_date: dt.date) -> None:
    verdict = support(item.version, run_date, exchange_tables)
    actual = verdict.row and f"{verdict.row.product} {verdict.row.cu}".replace(" *", " (unlisted CU)")
    require(
        verdict.problem is None,
        f"{item.server}: {verdict.problem}; move to {verdict.move_to}",
        expected="a supported product and CU (Exchange Server SE)",
        actual=actual or name(item.version, exchange_tables),
        remediation=verdict.move_to and f"Move to {verdict.move_to}",
    )
