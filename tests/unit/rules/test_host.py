"""Host rules (dagcheck/rules/host.py), as corrected where dagcheck disagreed with Microsoft (issue 23):
.NET Framework, free space, pending reboot. Each test names the source it rests on."""

from __future__ import annotations

from dagcheck.inventory import parse_inventory

# ---- .NET Framework (Learn, Exchange Server supportability matrix) ------------------------------------
from dagcheck.rules.host import dotnet_too_new, newest_dotnet, required_dotnet  # noqa: E402
from tests.conftest import lab_data

E2019_CU3, E2019_CU4, E2019_CU13 = (15, 2, 464, 5), (15, 2, 529, 5), (15, 2, 1258, 12)
E2019_CU14, SE = (15, 2, 1544, 4), (15, 2, 2562, 17)
E2016_CU14, E2016_CU15, E2016_CU23 = (15, 1, 1847, 3), (15, 1, 1913, 5), (15, 1, 2507, 6)
WS2019, WS2022, WS2025 = 17763, 20348, 26100


def test_dotnet_48_is_required_from_2019_cu4_and_2016_cu15() -> None:
    assert required_dotnet(E2019_CU3) == 461808 and required_dotnet(E2019_CU4) == 528040
    assert required_dotnet(E2016_CU14) == 461808 and required_dotnet(E2016_CU15) == 528040


def test_dotnet_481_expected_from_2019_cu14_and_on_se_on_server_2022_and_2025_only() -> None:
    for build in (E2019_CU14, SE):
        assert required_dotnet(build, WS2022) == 533320 and required_dotnet(build, WS2025) == 533320
        assert required_dotnet(build, WS2019) == 528040  # 4.8.1 does not install on Server 2019
        assert required_dotnet(build, None) == 528040
    assert required_dotnet(E2019_CU13, WS2022) == 528040


def test_dotnet_newer_than_the_build_supports_is_flagged() -> None:
    assert dotnet_too_new(533325, E2016_CU23)  # 4.8.1 on Exchange 2016: never supported
    assert not dotnet_too_new(528449, E2016_CU23)  # 4.8 (Server 2022's release number)
    assert dotnet_too_new(528040, (15, 2, 330, 5))  # 4.8 on 2019 CU1
    assert not dotnet_too_new(533325, SE) and newest_dotnet(SE) == 533320


# ---- Free space (Learn, Exchange Server system requirements: 30 GB on the install drive) ---------------

from dagcheck.rules.host import required_free_gb  # noqa: E402


def test_install_volume_needs_setups_30_gb_whatever_the_inventory_minimum() -> None:
    assert required_free_gb("C:", "C:", 10) == 30
    assert required_free_gb("c:", "C:", 50) == 50
    assert required_free_gb("D:", "C:", 10) == 10
    data = lab_data()
    data["expectations"]["host"] = {"volumes": ["D:"], "min_free_gb": 5, "install_volume": "e:"}
    e = parse_inventory(data, "lab.yml").expectations
    assert e.host_install_volume == "E:" and e.host_volumes == ("D:", "E:")  # read even when not listed


# ---- Pending reboot (CSS-Exchange Shared/Get-ServerRebootPending.ps1) -----------------------------------

from dagcheck.remote.base import CmdResult  # noqa: E402
from dagcheck.sources.pending_reboot import parse_reboot, reboot_command_lines  # noqa: E402

NOT_FOUND = CmdResult(1, "", "ERROR: The system was unable to find the specified registry key or value.\r\n")


def _reboot(flags: str | None = None, ccm: str | None = None) -> list:
    results = [NOT_FOUND, NOT_FOUND, NOT_FOUND]
    key = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\UpdateExeVolatile"
    results.append(NOT_FOUND if flags is None else CmdResult(0, f"\r\n{key}\r\n    Flags    REG_DWORD    {flags}\r\n\r\n", ""))
    results.append(CmdResult(1, "", "Invoke-CimMethod : Invalid namespace") if ccm is None else CmdResult(0, ccm, ""))
    return parse_reboot(results, "mbx1")


def test_update_exe_volatile_counts_only_with_non_zero_flags() -> None:
    assert any("UpdateExeVolatile" in line and "/v Flags" in line for line in reboot_command_lines("mbx1"))
    assert _reboot(flags="0x0") == []
    assert [i.detail for i in _reboot(flags="0x1")] == ["Flags 0x1"]


def test_configuration_manager_client_reboot_flags_count() -> None:
    assert _reboot() == []  # no client: the namespace does not exist
    assert _reboot(ccm="\r\n\r\nRebootPending       : False\r\nIsHardRebootPending : False\r\n") == []
    hard = _reboot(ccm="\r\n\r\nRebootPending       : False\r\nIsHardRebootPending : True\r\n")
    assert [i.detail for i in hard] == ["IsHardRebootPending True"]
    assert "CCM_ClientUtilities" in hard[0].source
