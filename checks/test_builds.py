"""Builds: a complete CU on each server, the same build across the DAG, and a current SU."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.collect import Snapshot
from dagcheck.context import DagView
from dagcheck.inventory import Expectations
from dagcheck.maintenance.planned import current_windows
from dagcheck.model import FileVersion
from dagcheck.rules.builds import currency, parse_build, rolling_parity, same_cu, show
from dagcheck.rules.dag import odd_ones_out


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
def test_admin_display_version_matches_exsetup(item: FileVersion, snapshot: Snapshot) -> None:
    adv = snapshot.get("exchange_server")[0].admin_display_version
    require(same_cu(adv, item.version), f"AdminDisplayVersion {show(adv)} but ExSetup.exe {show(item.version)}",
            expected=f"ExSetup.exe {show(adv)[:-len(str(adv[3]))]}x", actual=show(item.version))


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
def test_build_same_across_dag(item: FileVersion, dag: DagView, expect: Expectations) -> None:
    if expect.build != "same-across-dag":
        wanted = parse_build(expect.build)
        require(item.version == wanted, f"{dag.server} runs {show(item.version)}", expected=show(wanted),
                actual=show(item.version))
        return
    builds = {m: v[0].version for m, v in dag.each("exsetup", reachable_only=True).items()}
    dag_spec = dag.inventory.dag_of(dag.server)
    windows = current_windows(dag.inventory, dag_spec.name if dag_spec else None, dag.now)
    if windows:
        # A patch window in progress: mixed builds are expected, old or target, the patched ones agreeing.
        declared = next((w.target_build for w in windows if w.target_build), None)
        parity = rolling_parity(builds, parse_build(declared) if declared else None)
        dag.notes.append(f"{dag_spec.name if dag_spec else dag.server} patch window ({windows[0].describe()}): "
                         f"{parity.progress()}")
        # A patched member is fine; the one(s) off the old/target pair are flagged.
        require(item.version == parity.target or parity.problem is None,
                f"{dag.server} runs {show(item.version)} during the patch window: {parity.problem}",
                expected=f"the old build or the target {show(parity.target)}", actual=show(item.version))
        return
    odd = odd_ones_out(builds)
    others = ", ".join(f"{m}={show(b)}" for m, b in builds.items())  # type: ignore[arg-type]
    require(dag.server.lower() not in odd, f"{dag.server} runs {show(item.version)}, unlike the DAG ({others})",
            expected="the build the other members run", actual=show(item.version))


@check(
    "DAG-BUILD-003",
    "The server runs the latest Security Update of a supported CU",
    severity="warning",
    rationale="Only the CUs listed in dagcheck/data/exchange_builds.csv still receive Security Updates; a "
    "server behind the latest SU misses published fixes. The table's date says how fresh this verdict is.",
    remediation="Install the latest SU for the server's CU (or move to a supported CU) on {server}",
    phases=("health", "preflight"),
    source="exsetup",
)
def test_build_is_current(item: FileVersion) -> None:
    problem = currency(item.version)
    require(problem is None, str(problem), expected="latest SU of a supported CU", actual=show(item.version))
