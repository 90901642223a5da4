"""Lab-driven runs of the checks that issue 23's corrections added or changed, each with the fault it
injects in its name: the healthy lab stays green, the fault turns exactly its check red."""

from __future__ import annotations

from tests.conftest import lab_data

EP = ["-k", "extended_protection or ssl_flags or outlook_anywhere"]
DOTNET = ["--phase", "preflight", "--server", "mbx1", "-k", "dotnet"]
E2016 = "15.1.2507.72"


def _on_2016(faults: list[dict] | None = None) -> dict:
    data = lab_data(faults)
    data["lab"]["build"] = E2016
    return data


def test_ep_checks_green_on_the_healthy_lab(run_checks) -> None:
    result = run_checks(lab_data(), *EP)
    assert result.exit_code == 0, result.messages
    assert "test_iis_ssl_flags_match[mbx1:Exchange Back End/Microsoft-Server-ActiveSync/Proxy]" in {
        n.split("::", 1)[1] for n in result.outcomes
    }
    assert {n.split("::", 1)[1] for n in result.outcomes} >= {
        f"test_outlook_anywhere_not_offloading_ssl_with_extended_protection[mbx{i}:Rpc (Default Web Site)]" for i in range(1, 5)
    }


def test_fault_ssl_offloading_on_fails_outlook_anywhere_where_ep_is_on(run_checks) -> None:
    result = run_checks(lab_data([{"kind": "ssl_offloading_on", "server": "mbx3"}]), *EP)
    assert result.short_failed() == {
        "test_outlook_anywhere_not_offloading_ssl_with_extended_protection[mbx3:Rpc (Default Web Site)]"
    }
    assert "SSLOffloading $true while Extended Protection is on" in " ".join(result.messages.values())
    assert result.exit_code == 1


def test_fault_ep_mismatch_on_activesync_proxy_is_judged(run_checks) -> None:
    # Allow, not None: a location without tokenChecking inherits its parent's Require, as IIS does.
    fault = {
        "kind": "ep_mismatch",
        "server": "mbx2",
        "vdir": "Exchange Back End/Microsoft-Server-ActiveSync/Proxy",
        "value": "Allow",
    }
    result = run_checks(lab_data([fault]), *EP)
    assert (
        "test_iis_extended_protection_matches[mbx2:Exchange Back End/Microsoft-Server-ActiveSync/Proxy]" in result.short_failed()
    )


def test_dotnet_healthy_on_exchange_2016_lab(run_checks) -> None:
    result = run_checks(_on_2016(), *DOTNET)
    assert not result.failed(), result.messages
    assert "test_dotnet_not_newer_than_build_supports[mbx1]" in {n.split("::", 1)[1] for n in result.outcomes}


def test_fault_dotnet_481_on_exchange_2016_is_newer_than_supported(run_checks) -> None:
    result = run_checks(_on_2016([{"kind": "dotnet_outdated", "server": "mbx1", "value": "533325"}]), *DOTNET)
    assert result.short_failed() == {"test_dotnet_not_newer_than_build_supports[mbx1]"}
    assert "newer than Exchange 15.1.2507.6 supports (4.8 (release 528040) at most)" in " ".join(result.messages.values())
    assert result.exit_code == 0  # a warning: reported, not the gate


def test_fault_low_disk_20_gb_on_the_install_volume_fails_the_preflight_gate(run_checks) -> None:
    """The lab inventory's minimum is 10 GB: 20 GB passed it, but setup needs 30 GB on C:."""
    faults = [
        {"kind": "low_disk", "server": "mbx1", "volume": "C:", "value": "20"},
        {"kind": "low_disk", "server": "mbx1", "volume": "E:", "value": "60"},
    ]
    result = run_checks(lab_data(faults), "--phase", "preflight", "--server", "mbx1", "-k", "free_space")
    assert result.short_failed() == {"test_volume_has_free_space[mbx1:C:]"}  # E: (60 GB) keeps the inventory's 10 GB
    assert "setup needs 30 GB on the install volume" in " ".join(result.messages.values())
    assert result.exit_code == 1


REBOOT = ["--phase", "preflight", "--server", "mbx1", "-k", "reboot"]


def test_fault_pending_reboot_exchange_setup_done_leaves_flags_0_and_no_reboot(run_checks) -> None:
    result = run_checks(lab_data([{"kind": "pending_reboot", "server": "mbx1", "value": "exchange_setup_done"}]), *REBOOT)
    assert not result.failed(), result.messages
    assert "test_no_reboot_is_pending[mbx1]" in {n.split("::", 1)[1] for n in result.outcomes}


def test_fault_pending_reboot_ccm_client_turns_the_reboot_check_red(run_checks) -> None:
    result = run_checks(lab_data([{"kind": "pending_reboot", "server": "mbx1", "value": "ccm"}]), *REBOOT)
    assert result.short_failed() == {"test_no_reboot_is_pending[mbx1]"}
    assert "CCM_ClientUtilities.DetermineIfRebootPending (RebootPending True)" in " ".join(result.messages.values())
