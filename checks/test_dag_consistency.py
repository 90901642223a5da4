"""What Learn requires or the Extended Protection script checks to be the same on every DAG member."""

from __future__ import annotations

from dagcheck.catalogue import check, require
from dagcheck.context import DagView
from dagcheck.rules.consistency import CLOCK_TOLERANCE, clock_findings, tls_differences
from dagcheck.rules.dag import odd_ones_out
from dagcheck.rules.host import windows_name
from dagcheck.sources.clock import ClockReading
from dagcheck.sources.tls_settings import TlsSettings
from dagcheck.sources.windows_build import WindowsBuild


@check(
    "DAG-OS-001",
    "Every DAG member runs the same Windows Server version",
    severity="critical",
    rationale="All members of a DAG must run the same operating system (Learn, 'Planning for high availability "
    "and site resilience'); failover clustering does not support members on different Windows Server versions "
    "beyond a rolling OS upgrade, which Exchange does not support. Read from the registry's CurrentBuildNumber.",
    remediation="Rebuild the member that differs on the DAG's Windows Server version (Exchange does not support an "
    "in-place OS upgrade): remove it from the DAG, reinstall, add it back",
    phases=("health", "preflight", "postflight"),
    source="windows_build",
)
def test_windows_version_same_across_dag(item: WindowsBuild, dag: DagView) -> None:
    require(
        item.build is not None,
        f"the Windows build of {item.server} could not be read: {item.error}",
        expected="CurrentBuildNumber",
        actual=str(item.error),
    )
    builds = {m: v[0].build for m, v in dag.each("windows_build", reachable_only=True).items() if v and v[0].build}
    odd = odd_ones_out(builds)
    others = ", ".join(f"{m}={windows_name(b)}" for m, b in builds.items() if m != item.server)  # type: ignore[arg-type]
    require(
        item.server.lower() not in odd,
        f"{item.server} runs {windows_name(item.build)}, unlike the DAG ({others})",  # type: ignore[arg-type]
        expected="the Windows Server version the other members run",
        actual=windows_name(item.build),
    )  # type: ignore[arg-type]


@check(
    "DAG-TLS-001",
    "Every DAG member has the same TLS settings",
    severity="critical",
    rationale="Extended Protection needs the same TLS configuration on every Exchange server: CSS-Exchange's "
    "ExchangeExtendedProtectionManagement.ps1 refuses to turn EP on until all servers have the same TLS settings, "
    "and a member that still offers TLS 1.0 or lacks .NET's strong crypto breaks clients and server-to-server "
    "traffic after failover. Compared: SCHANNEL TLS 1.0-1.3 Server/Client Enabled and DisabledByDefault; .NET "
    "v4/v2 SystemDefaultTlsVersions and SchUseStrongCrypto, native and WOW6432Node (Learn, 'Exchange Server TLS "
    "configuration best practices'; the values CSS-Exchange's HealthChecker reads).",
    remediation="Set the TLS registry values on {server} as on the other members (Learn's TLS guidance), then reboot",
    phases=("health", "preflight", "postflight"),
    source="tls_settings",
)
def test_tls_settings_same_across_dag(item: TlsSettings, dag: DagView) -> None:
    require(
        item.error is None,
        f"the TLS settings of {item.server} could not be read: {item.error}",
        expected="reg.exe query output",
        actual=str(item.error),
    )
    settings = {m: v[0].as_dict() for m, v in dag.each("tls_settings", reachable_only=True).items() if v and v[0].error is None}
    differs = tls_differences(item.server, settings)
    require(
        not differs,
        f"{item.server}'s TLS settings differ from the DAG's: {'; '.join(differs)}",
        expected="the TLS settings the other members have",
        actual="; ".join(differs),
    )


@check(
    "DAG-TIME-001",
    "Every member's clock is within 60 s of the jump host and of the other members",
    severity="critical",
    rationale="Kerberos refuses tickets beyond its clock skew tolerance (5 minutes by default; Learn, 'Maximum "
    "tolerance for computer clock synchronization'), cluster and replication logs stop lining up, and dagcheck's "
    "maintenance lease orders timestamps written by different members. Read with Get-Date on each member's "
    "Windows endpoint, against the jump host's clock at the call's midpoint (half the round trip is allowed).",
    remediation="w32tm /resync /rediscover on {server}; check its time source (w32tm /query /source: the domain "
    "hierarchy, NT5DS) and the PDC emulator's",
    phases=("health", "preflight", "postflight"),
    source="clock",
)
def test_clock_agrees_across_dag(item: ClockReading, dag: DagView) -> None:
    readings = {m: v[0] for m, v in dag.each("clock", reachable_only=True).items() if v}
    readings[item.server.lower()] = item
    findings = clock_findings(item.server, readings)
    require(not findings, "; ".join(findings), expected=f"within {CLOCK_TOLERANCE:.0f} s", actual="; ".join(findings))
