"""The Extended Protection matrix (dagcheck/rules/extended_protection.py): which vdir expects which
tokenChecking, from which build, and the SSL flags that go with it."""

from __future__ import annotations

from dagcheck.rules.extended_protection import (
    IIS_MATRIX,
    expected_token_checking,
    judge_location,
    judge_ssl_flags,
    split_vdir_name,
    supports_extended_protection,
)
from dagcheck.sources.iis_config import BACK_END, FRONT_END, IisLocation


def test_ep_matrix_front_and_back_end() -> None:
    assert expected_token_checking("Autodiscover", "Default Web Site") == "None"
    assert expected_token_checking("EWS", "Default Web Site") == "Allow"
    assert expected_token_checking("EWS", "Exchange Back End") == "Require"
    assert expected_token_checking("PowerShell", "Default Web Site") == "None"
    assert expected_token_checking("mapi", "Exchange Back End") is None
    assert split_vdir_name("owa (Default Web Site)") == ("owa", "Default Web Site")


def test_ep_supported_builds() -> None:
    assert supports_extended_protection((15, 2, 1544, 4))
    assert supports_extended_protection((15, 2, 1118, 11)) and not supports_extended_protection((15, 2, 1118, 7))
    assert supports_extended_protection((15, 2, 986, 28)) and not supports_extended_protection((15, 2, 986, 5))
    assert supports_extended_protection((15, 1, 2507, 11)) and not supports_extended_protection((15, 1, 2375, 7))


# ---- Extended Protection (CSS-Exchange Shared/Get-ExtendedProtectionConfiguration.ps1) -----------------

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
