"""Host facts' rules: which .NET Framework and Windows Server an Exchange build needs, how much free space setup
needs. The facts themselves are read by dagcheck/sources/ (dotnet, windows_build, volumes, pending_reboot)."""

from __future__ import annotations

DOTNET_NAMES = {378389: "4.5", 461308: "4.7.1", 461808: "4.7.2", 528040: "4.8", 533320: "4.8.1"}
NET_471, NET_472, NET_48, NET_481 = 461308, 461808, 528040, 533320
# Windows Server builds where .NET Framework 4.8.1 installs (2022, 2025); it does not on Server 2019.
DOTNET_481_WINDOWS = (20348, 26100)
# Exchange setup needs at least 30 GB free on the drive it installs on (Learn, "Exchange Server system
# requirements", disk space: https://learn.microsoft.com/exchange/plan-and-deploy/system-requirements).
SETUP_FREE_GB = 30


def required_free_gb(volume: str, install_volume: str, min_free_gb: int) -> int:
    """The free space a volume needs before a CU: the inventory's minimum, and setup's 30 GB on the
    install volume whatever the inventory says (a lower minimum there would pass a server setup refuses)."""
    return max(min_free_gb, SETUP_FREE_GB) if volume.upper() == install_volume.upper() else min_free_gb


WINDOWS_SERVER = {
    9200: "Windows Server 2012",
    9600: "Windows Server 2012 R2",
    14393: "Windows Server 2016",
    17763: "Windows Server 2019",
    20348: "Windows Server 2022",
    26100: "Windows Server 2025",
}


def supported_windows(build: tuple[int, int, int, int]) -> dict[int, str]:
    """The Windows Server builds an Exchange build is supported on (Exchange Server supportability
    matrix, from memory of it, to verify when a CU ships: 2016 on Server 2012, 2012 R2 and 2016; 2019 on
    Server 2019, on 2022 from CU12 (15.2.1118) and on 2025 from CU15 (15.2.1748); SE on 2019, 2022, 2025)."""
    major, minor, cu_build, _ = build
    wanted: tuple[int, ...]
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
