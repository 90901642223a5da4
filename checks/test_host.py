"""Windows host facts that belong before patching, read through testinfra over WinRS."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.collect import Snapshot
from dagcheck.facts import REQUIRED_SERVICES
from dagcheck.inventory import Expectations
from dagcheck.rules.host import SETUP_FREE_GB, dotnet_name, dotnet_too_new, newest_dotnet, required_dotnet, required_free_gb
from dagcheck.sources.dotnet import DotNetRelease
from dagcheck.sources.pending_reboot import RebootIndicator
from dagcheck.sources.services import WindowsService
from dagcheck.sources.volumes import VolumeSpace

GIB = 1024**3


@check(
    "HOST-001",
    "No reboot is pending",
    severity="critical",
    rationale="Exchange setup refuses to run, or fails half-way, while Windows servicing, Windows Update or a "
    "previous Exchange update waits for a reboot; a pending file rename means binaries are not yet replaced.",
    remediation="Restart {server} (after moving its databases away), then run the pre-flight again",
    phases=("preflight", "postflight"),
    source="pending_reboot",
    per_server=True,
)
def test_no_reboot_is_pending(item: tuple[RebootIndicator, ...]) -> None:
    reasons = "; ".join(f"{i.source} ({i.detail})" for i in item)
    require(
        not item,
        f"a reboot is pending on {item[0].server if item else ''}: {reasons}",
        expected="no pending-reboot indicator",
        actual=reasons or "none",
    )


@check(
    "HOST-002",
    "Enough free space on the system, database and log volumes",
    severity="critical",
    rationale="Setup needs at least 30 GB free on the drive Exchange is installed on (Learn, Exchange Server "
    "system requirements), whatever lower minimum the inventory sets; a database or log volume that fills up "
    "dismounts its databases. Other thresholds come from the inventory (expectations.host; install_volume "
    "defaults to C:).",
    remediation="Free space on {key} (old logs under V15\\Logging, IIS logs, CU installers) or extend the volume",
    phases=("health", "preflight"),
    source="volumes",
)
def test_volume_has_free_space(item: VolumeSpace, expect: Expectations) -> None:
    require(
        item.error is None,
        f"free space of {item.key} could not be read: {item.error}",
        expected="fsutil volume diskfree output",
        actual=str(item.error),
    )
    free_gb = item.free_bytes / GIB  # type: ignore[operator]
    percent = 100 * item.free_bytes / item.total_bytes  # type: ignore[operator]
    need_gb = required_free_gb(item.volume, expect.host_install_volume, expect.host_min_free_gb)
    setup = (
        f" (setup needs {SETUP_FREE_GB} GB on the install volume)"
        if item.volume.upper() == expect.host_install_volume and need_gb > expect.host_min_free_gb
        else ""
    )
    require(
        free_gb >= need_gb and percent >= expect.host_min_free_percent,
        f"{item.key} has {free_gb:.1f} GB free ({percent:.0f}%){setup}",
        expected=f"at least {need_gb} GB and {expect.host_min_free_percent}% free",
        actual=f"{free_gb:.1f} GB, {percent:.0f}%",
    )


@check(
    "HOST-003",
    ".NET Framework meets what the installed Exchange build requires",
    severity="critical",
    rationale="Each Exchange CU supports a narrow range of .NET Framework releases; setup blocks on an "
    "older one, and an unsupported one is an unsupported server (Exchange Server supportability matrix): 4.8 "
    "from 2019 CU4 and 2016 CU15; from 2019 CU14 and on SE, 4.8.1 on Windows Server 2022/2025 (4.8 on 2019).",
    remediation="Install the required .NET Framework on {server} (with its reboot) before the CU",
    phases=("preflight",),
    source="dotnet",
)
def test_dotnet_meets_build_requirement(item: DotNetRelease, snapshot: Snapshot) -> None:
    require(
        item.release is not None,
        f".NET Framework 4 release of {item.server} could not be read: {item.error}",
        expected="a Release value under NDP\\v4\\Full",
        actual=str(item.error),
    )
    build = snapshot.get("exchange_server")[0].admin_display_version
    needed = required_dotnet(build, _windows_build(snapshot))
    require(
        item.release >= needed,  # type: ignore[operator]
        f"{item.server} runs .NET {dotnet_name(item.release)}, Exchange {'.'.join(map(str, build))} needs {dotnet_name(needed)}",  # type: ignore[arg-type]
        expected=f"release >= {needed}",
        actual=str(item.release),
    )


def _windows_build(snapshot: Snapshot) -> int | None:
    """The Windows build (4.8.1 is expected on 2022/2025 only). A failed read fails the check (SourceFailed);
    a value that could not be parsed leaves the lower requirement, and its own check reports it."""
    builds = snapshot.get("windows_build")
    return builds[0].build if builds else None


@check(
    "HOST-004",
    "Windows services Exchange and the cluster need are running",
    severity="critical",
    rationale="Read from the service control manager (sc.exe), not from Exchange, so that it also answers "
    "when Exchange's own endpoint is degraded; ClusSvc is needed by every DAG member.",
    remediation="Start-Service <name> on {server}; if it stops again, read the Application log",
    phases=("preflight", "postflight"),
    source="windows_services",
    select=lambda s: s.name in REQUIRED_SERVICES,
)
def test_windows_service_running(item: WindowsService) -> None:
    require(
        item.state == "RUNNING",
        f"service {item.name} on {item.server} is {item.state}",
        expected="RUNNING",
        actual=item.state,
        remediation=f"Invoke-Command -ComputerName {item.server} {{ Start-Service {item.name} }}",
    )


@check(
    "HOST-005",
    ".NET Framework is not newer than the installed Exchange build supports",
    severity="warning",
    rationale="A .NET Framework release newer than the CU was tested with is an unsupported combination "
    "(Learn, Exchange Server supportability matrix: e.g. 4.8.1 only from 2019 CU4, never on Exchange 2016); "
    "CSS-Exchange HealthChecker warns about it. Typically Windows Update installed it ahead of the CU.",
    remediation="Update Exchange on {server} to a CU that supports this .NET Framework, or block the .NET update until then",
    phases=("health", "preflight"),
    source="dotnet",
    select=lambda d: d.release is not None,
)
def test_dotnet_not_newer_than_build_supports(item: DotNetRelease, snapshot: Snapshot) -> None:
    build = snapshot.get("exchange_server")[0].admin_display_version
    newest = newest_dotnet(build)
    require(
        not dotnet_too_new(item.release, build),  # type: ignore[arg-type]
        f"{item.server} runs .NET {dotnet_name(item.release)}, newer than Exchange "  # type: ignore[arg-type]
        f"{'.'.join(map(str, build))} supports ({dotnet_name(newest)} at most)",
        expected=f".NET {dotnet_name(newest)} or older",
        actual=dotnet_name(item.release),
    )  # type: ignore[arg-type]
