"""Pure-rule corrections where dagcheck disagreed with Microsoft (issue 23): queue thresholds, .NET
Framework, Extended Protection, free space, pending reboot. Each test names the source it rests on."""

from __future__ import annotations

from dagcheck.inventory import parse_inventory
from dagcheck.model import DatabaseCopyStatus
from dagcheck.rules.dag import redundant_copies
from tests.conftest import lab_data


def _copy(server: str, copy_queue: int = 0, replay_queue: int = 0) -> DatabaseCopyStatus:
    return DatabaseCopyStatus(database="DB01", server=server, status="Healthy", active=False, activation_preference=2,
                              copy_queue=copy_queue, replay_queue=replay_queue, content_index="Healthy",
                              activation_suspended=False, lagged=False, error_message=None)


def test_queue_defaults_follow_best_copy_selection_and_the_good_availability_dial() -> None:
    """Learn, "Exchange Server Active Manager": best copy selection needs copy queue < 10 and replay queue
    < 50; GoodAvailability (the default AutoDatabaseMountDial) mounts with at most 6 logs missing."""
    data = lab_data()
    for key in ("copy_queue_max", "replay_queue_max"):
        data["expectations"].pop(key)
    e = parse_inventory(data, "lab.yml").expectations
    assert (e.copy_queue_max, e.replay_queue_max) == (6, 49)
    shipped = parse_inventory(lab_data(), "lab.yml").expectations
    assert (shipped.copy_queue_max, shipped.replay_queue_max) == (6, 49)


def test_a_copy_that_would_not_mount_or_be_selected_is_not_redundant_by_default() -> None:
    e = parse_inventory(lab_data(), "lab.yml").expectations
    copies = {"mbx2": [_copy("mbx2", copy_queue=7)], "mbx3": [_copy("mbx3", replay_queue=50)],
              "mbx4": [_copy("mbx4", copy_queue=6, replay_queue=49)]}
    good, refused = redundant_copies("DB01", "mbx1", copies, {}, {}, e.copy_queue_max, e.replay_queue_max)
    assert good == ["DB01\\mbx4"]
    assert sorted(refused) == ["DB01\\mbx2: copy queue 7", "DB01\\mbx3: replay queue 50"]


# ---- .NET Framework (Learn, Exchange Server supportability matrix) ------------------------------------

from dagcheck.rules.host import dotnet_too_new, newest_dotnet, required_dotnet  # noqa: E402

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


# ---- Extended Protection (CSS-Exchange Shared/Get-ExtendedProtectionConfiguration.ps1) -----------------

from dagcheck.iis import IisLocation  # noqa: E402
from dagcheck.rules.extended_protection import (  # noqa: E402
    BACK_END,
    FRONT_END,
    IIS_MATRIX,
    expected_token_checking,
    judge_location,
    judge_ssl_flags,
)

SE_SU = (15, 2, 2562, 49)


def _loc(site: str, vdir: str, token: str = "None", ssl: str | None = "Ssl, Ssl128") -> IisLocation:
    return IisLocation("mbx1", site, vdir, True, token, ssl, True)


def test_activesync_proxy_is_judged_allow_front_require_back() -> None:
    assert IIS_MATRIX[(FRONT_END, "Microsoft-Server-ActiveSync/Proxy")] == "Allow"
    assert expected_token_checking("microsoft-server-activesync/proxy", BACK_END) == "Require"
    assert not judge_location(_loc(BACK_END, "Microsoft-Server-ActiveSync/Proxy"), SE_SU, {}).ok
    assert judge_location(_loc(BACK_END, "Microsoft-Server-ActiveSync/Proxy", "Require"), SE_SU, {}).ok


def test_ssl_flags_follow_the_extended_protection_table() -> None:
    assert judge_ssl_flags(_loc(FRONT_END, "owa", ssl="Ssl, Ssl128"), SE_SU).ok
    assert not judge_ssl_flags(_loc(FRONT_END, "Rpc", ssl="None"), SE_SU).ok
    assert not judge_ssl_flags(_loc(BACK_END, "mapi/emsmdb", ssl="Ssl"), SE_SU).ok  # Ssl128 missing
    assert not judge_ssl_flags(_loc(BACK_END, "owa", ssl=None), SE_SU).ok
    assert judge_ssl_flags(_loc(FRONT_END, "PowerShell", ssl="SslNegotiateCert"), SE_SU).ok
    assert not judge_ssl_flags(_loc(FRONT_END, "PowerShell", ssl="Ssl, Ssl128, SslNegotiateCert"), SE_SU).ok
    assert judge_ssl_flags(_loc(BACK_END, "PowerShell", ssl="Ssl, SslNegotiateCert, Ssl128"), SE_SU).ok
    assert not judge_ssl_flags(_loc(BACK_END, "PowerShell", ssl="Ssl, Ssl128"), SE_SU).ok
    assert judge_ssl_flags(_loc(FRONT_END, "Rpc", ssl="None"), (15, 2, 986, 5)).ok  # no EP on that build


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
from dagcheck.rules.host import parse_reboot, reboot_command_lines  # noqa: E402

NOT_FOUND = CmdResult(1, "", "ERROR: The system was unable to find the specified registry key or value.\r\n")


def _reboot(flags: str | None = None, ccm: str | None = None) -> list:
    results = [NOT_FOUND, NOT_FOUND, NOT_FOUND]
    key = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Updates\\UpdateExeVolatile"
    results.append(NOT_FOUND if flags is None else CmdResult(
        0, f"\r\n{key}\r\n    Flags    REG_DWORD    {flags}\r\n\r\n", ""))
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
