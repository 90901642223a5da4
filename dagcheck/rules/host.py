"""Host facts read through WinRS: which registry keys mean a pending reboot, which .NET a build needs."""

from __future__ import annotations

from dagcheck.model import DotNetRelease, RebootIndicator, WindowsBuild, registry_values, short_name
from dagcheck.remote.base import CmdResult

# Key existence means a reboot is pending (Windows servicing, Windows Update); the value is a pending file
# rename (the checks HealthChecker makes: CSS-Exchange Shared/Get-ServerRebootPending.ps1).
REBOOT_KEYS = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending",
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired",
)
# Exchange setup's own marker: the key may stay behind after the reboot it asked for; only a non-zero Flags
# value means a reboot is still due (as HealthChecker and Exchange setup's prerequisite check read it).
UPDATE_EXE_VOLATILE = r"HKLM\SOFTWARE\Microsoft\Updates\UpdateExeVolatile"
SESSION_MANAGER = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager"
NDP_FULL = r"HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full"
DOTNET_NAMES = {378389: "4.5", 461308: "4.7.1", 461808: "4.7.2", 528040: "4.8", 533320: "4.8.1"}
NET_471, NET_472, NET_48, NET_481 = 461308, 461808, 528040, 533320
# Windows Server builds where .NET Framework 4.8.1 installs (2022, 2025); it does not on Server 2019.
DOTNET_481_WINDOWS = (20348, 26100)
# The Configuration Manager (SCCM) client's own verdict, read as HealthChecker reads it (Get-ServerRebootPending:
# Invoke-CimMethod -Namespace Root\ccm\clientSDK -ClassName CCM_ClientUtilities -Name DetermineIfRebootPending;
# RebootPending or IsHardRebootPending). Without the client the namespace does not exist: not a reboot.
CCM_COMMAND = ('powershell.exe -NoProfile -NonInteractive -Command "Invoke-CimMethod -Namespace root\\ccm\\ClientSDK '
               '-ClassName CCM_ClientUtilities -MethodName DetermineIfRebootPending | Format-List RebootPending,'
               'IsHardRebootPending"')
# Exchange setup needs at least 30 GB free on the drive it installs on (Learn, "Exchange Server system
# requirements", disk space: https://learn.microsoft.com/exchange/plan-and-deploy/system-requirements).
SETUP_FREE_GB = 30


def required_free_gb(volume: str, install_volume: str, min_free_gb: int) -> int:
    """The free space a volume needs before a CU: the inventory's minimum, and setup's 30 GB on the
    install volume whatever the inventory says (a lower minimum there would pass a server setup refuses)."""
    return max(min_free_gb, SETUP_FREE_GB) if volume.upper() == install_volume.upper() else min_free_gb


def reboot_command_lines(server: str) -> list[str]:
    return [f'reg.exe query "{key}"' for key in REBOOT_KEYS] + [
        f'reg.exe query "{SESSION_MANAGER}" /v PendingFileRenameOperations',
        f'reg.exe query "{UPDATE_EXE_VOLATILE}" /v Flags',
        CCM_COMMAND,
    ]


def parse_reboot(results: list[CmdResult], server: str) -> list[RebootIndicator]:
    name = short_name(server)
    indicators = [RebootIndicator(name, key, "key exists")
                  for key, result in zip(REBOOT_KEYS, results, strict=False) if result.rc == 0]
    rest = results[len(REBOOT_KEYS):]
    rename = rest[0] if rest else None
    if rename is not None and rename.rc == 0:
        data = registry_values(rename.stdout).get("PendingFileRenameOperations", ("", ""))[1]
        if data.strip("\\0 "):
            indicators.append(RebootIndicator(name, f"{SESSION_MANAGER}\\PendingFileRenameOperations", data[:120]))
    volatile = rest[1] if len(rest) > 1 else None
    if volatile is not None and volatile.rc == 0:
        flags = registry_values(volatile.stdout).get("Flags", ("", "0"))[1]
        if _int(flags) != 0:
            indicators.append(RebootIndicator(name, f"{UPDATE_EXE_VOLATILE}\\Flags", f"Flags {flags}"))
    ccm = rest[2] if len(rest) > 2 else None
    if ccm is not None and ccm.rc == 0:
        said = _format_list(ccm.stdout)
        pending = [k for k in ("RebootPending", "IsHardRebootPending") if said.get(k, "").lower() == "true"]
        if pending:
            indicators.append(RebootIndicator(name, "root\\ccm\\ClientSDK CCM_ClientUtilities.DetermineIfRebootPending",
                                              ", ".join(f"{k} True" for k in pending)))
    return indicators


def _int(text: str) -> int:
    """A reg.exe number (REG_DWORD prints 0x1); unreadable counts as non-zero: a reboot may be due."""
    try:
        return int(text, 0)
    except ValueError:
        return 1


def _format_list(stdout: str) -> dict[str, str]:
    """PowerShell Format-List text -> {name: value}."""
    out = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def parse_dotnet(results: list[CmdResult], server: str) -> list[DotNetRelease]:
    result = results[0]
    value = registry_values(result.stdout).get("Release")
    if result.rc != 0 or value is None:
        return [DotNetRelease(short_name(server), None, (result.stderr or result.stdout).strip() or f"exit code {result.rc}")]
    return [DotNetRelease(short_name(server), int(value[1], 0))]


WINDOWS_NT = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
WINDOWS_SERVER = {9200: "Windows Server 2012", 9600: "Windows Server 2012 R2", 14393: "Windows Server 2016",
                  17763: "Windows Server 2019", 20348: "Windows Server 2022", 26100: "Windows Server 2025"}


def parse_windows_build(results: list[CmdResult], server: str) -> list[WindowsBuild]:
    result = results[0]
    value = registry_values(result.stdout).get("CurrentBuildNumber")
    if result.rc != 0 or value is None or not value[1].strip().isdigit():
        why = (result.stderr or result.stdout).strip() or f"exit code {result.rc}"
        return [WindowsBuild(short_name(server), None, why)]
    return [WindowsBuild(short_name(server), int(value[1].strip()))]


def supported_windows(build: tuple[int, int, int, int]) -> dict[int, str]:
    """The Windows Server builds an Exchange build is supported on (Exchange Server supportability
    matrix, from memory of it, to verify when a CU ships: 2016 on Server 2012, 2012 R2 and 2016; 2019 on
    Server 2019, on 2022 from CU12 (15.2.1118) and on 2025 from CU15 (15.2.1748); SE on 2019, 2022, 2025)."""
    major, minor, cu_build, _ = build
    if (major, minor) == (15, 1):
        wanted = (9200, 9600, 14393)
    elif (major, minor) == (15, 2):
        wanted = (17763,) + ((20348,) if cu_build >= 1118 else ()) + ((26100,) if cu_build >= 1748 else ())
    else:
        wanted = ()
    return {b: WINDOWS_SERVER[b] for b in wanted}


def windows_name(build: int) -> str:
    return f"{WINDOWS_SERVER[build]} (build {build})" if build in WINDOWS_SERVER else f"Windows build {build}"


def required_dotnet(build: tuple[int, int, int, int], windows_build: int | None = None) -> int:
    """Minimum .NET Framework release for an Exchange build (Learn, Exchange Server supportability matrix,
    https://learn.microsoft.com/exchange/plan-and-deploy/supportability-matrix; older CUs as Michel de Rooij's
    "Upgrade Paths for CU's & .NET" keeps them, eightwone.com/2017/12/21/upgrade-paths-for-cus-net/):
    4.8 is required from Exchange 2019 CU4 (15.2.529) and 2016 CU15 (15.1.1913); Exchange 2019 CU14
    (15.2.1544) and later, and Exchange Server SE, expect 4.8.1 on Windows Server 2022/2025 and 4.8 on
    Windows Server 2019, where 4.8.1 does not install. Unknown Windows: the lower of the two (4.8).
    Verify when a new CU ships."""
    major, minor, cu_build, _ = build
    if (major, minor) == (15, 2):
        if cu_build >= 1544:
            return NET_481 if windows_build in DOTNET_481_WINDOWS else NET_48
        return NET_48 if cu_build >= 529 else NET_472
    if (major, minor) == (15, 1):
        if cu_build >= 1913:
            return NET_48
        return NET_472 if cu_build >= 1591 else NET_471
    return NET_48


def newest_dotnet(build: tuple[int, int, int, int]) -> int:
    """The newest .NET Framework version an Exchange build supports (same sources as required_dotnet):
    4.8.1 from 2019 CU4 (15.2.529) on, and on SE; 4.8 on 2019 CU2-CU3; 4.7.2 before; 4.8 on 2016 CU13
    (15.1.1779) and later (2016 never supported 4.8.1); 4.7.2 on 2016 CU11-CU12; 4.7.1 before.
    HealthChecker warns when the installed .NET is newer than this."""
    major, minor, cu_build, _ = build
    if (major, minor) == (15, 2):
        return NET_481 if cu_build >= 529 else (NET_48 if cu_build >= 397 else NET_472)
    if (major, minor) == (15, 1):
        return NET_48 if cu_build >= 1779 else (NET_472 if cu_build >= 1591 else NET_471)
    return NET_481


def dotnet_version(release: int) -> int:
    """The named .NET version (as its minimum release) a Release value belongs to: 528449 is 4.8."""
    return max((r for r in DOTNET_NAMES if r <= release), default=release)


def dotnet_too_new(release: int, build: tuple[int, int, int, int]) -> bool:
    return dotnet_version(release) > newest_dotnet(build)


def dotnet_name(release: int) -> str:
    best = max((r for r in DOTNET_NAMES if r <= release), default=None)
    return f"{DOTNET_NAMES[best]} (release {release})" if best else f"release {release}"
