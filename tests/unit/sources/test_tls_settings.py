"""The TLS registry values (dagcheck/sources/tls_settings.py), read as reg.exe prints them."""

from __future__ import annotations

from dagcheck.remote.base import CmdResult
from dagcheck.sources import tls_settings

SCHANNEL_S = (
    "\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\r\n\r\n"
    "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.0\\Server\r\n"
    "    Enabled    REG_DWORD    0x0\r\n    DisabledByDefault    REG_DWORD    0x1\r\n\r\n"
    "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Client\r\n"
    "    Enabled    REG_DWORD    0x1\r\n    DisabledByDefault    REG_DWORD    0x0\r\n\r\n"
)
DOTNET = (
    "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319\r\n"
    "    SystemDefaultTlsVersions    REG_DWORD    0x1\r\n    SchUseStrongCrypto    REG_DWORD    0x1\r\n"
    "    OnlyUseLatestCLR    REG_DWORD    0x1\r\n\r\n"
)
MISSING = CmdResult(1, "", "ERROR: The system was unable to find the specified registry key or value.\r\n")


def test_tls_values_are_read_per_key_and_a_missing_key_means_not_set() -> None:
    (got,) = tls_settings.parse([CmdResult(0, SCHANNEL_S, ""), CmdResult(0, DOTNET, ""), MISSING, MISSING, MISSING], "EX1")
    values = got.as_dict()
    assert values["SCHANNEL\\Protocols\\TLS 1.0\\Server\\Enabled"] == "0x0"
    assert values["SCHANNEL\\Protocols\\TLS 1.2\\Client\\DisabledByDefault"] == "0x0"
    assert values["Microsoft\\.NETFramework\\v4.0.30319\\SchUseStrongCrypto"] == "0x1"
    assert "Microsoft\\.NETFramework\\v4.0.30319\\OnlyUseLatestCLR" not in values and len(values) == 6
    (denied,) = tls_settings.parse([CmdResult(1, "", "ERROR: Access is denied.\r\n")] + [MISSING] * 4, "EX1")
    assert denied.error and "Access is denied" in denied.error
