"""The TLS settings Windows and .NET apply, from the registry: what must be the same on every member.

Extended Protection needs the same TLS configuration on every Exchange server: CSS-Exchange's
ExchangeExtendedProtectionManagement.ps1 "validates that all servers ... have the same TLS settings" before it
turns EP on (its documentation, linked from Learn's "Configure Windows Extended Protection in Exchange
Server"), and Microsoft's TLS guidance sets these keys (Learn, "Exchange
Server TLS configuration best practices"): SCHANNEL\\Protocols\\TLS 1.0/1.1/1.2/1.3\\Server|Client
(Enabled, DisabledByDefault) and .NET's SystemDefaultTlsVersions and SchUseStrongCrypto under
.NETFramework\\v4.0.30319 and v2.0.50727, native and WOW6432Node: the values CSS-Exchange's
Get-AllTlsSettingsFromRegistry reads for HealthChecker and the EP script. Guessed: that `reg.exe query /s`
prints one block per key with no trailing summary line (the parser accepts either).
"""

from __future__ import annotations

from dataclasses import dataclass

from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult
from dagcheck.sources.base import HostSource
from dagcheck.sources.values import short_name

SCHANNEL = r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols"
DOTNET_KEYS = (
    r"HKLM\SOFTWARE\Microsoft\.NETFramework\v4.0.30319",
    r"HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319",
    r"HKLM\SOFTWARE\Microsoft\.NETFramework\v2.0.50727",
    r"HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v2.0.50727",
)
DOTNET_VALUES = ("SystemDefaultTlsVersions", "SchUseStrongCrypto")
SCHANNEL_VALUES = ("Enabled", "DisabledByDefault")
COMMAND_LINES = (f'reg.exe query "{SCHANNEL}" /s', *(f'reg.exe query "{k}"' for k in DOTNET_KEYS))
_HIVE = "HKEY_LOCAL_MACHINE\\"


@dataclass(frozen=True)
class TlsSettings:
    """The TLS-relevant registry values of one server: (key below HKLM, value) -> data; absent = not set."""

    server: str
    values: tuple[tuple[str, str], ...]  # ("SCHANNEL\\Protocols\\TLS 1.0\\Server\\Enabled", "0x0"), sorted
    error: str | None = None

    @property
    def key(self) -> str:
        return self.server

    def as_dict(self) -> dict[str, str]:
        return dict(self.values)


def _short(key: str) -> str:
    key = key.strip()
    if key.upper().startswith(_HIVE):
        key = key[len(_HIVE) :]
    for prefix in ("SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\", "SOFTWARE\\"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _blocks(stdout: str) -> dict[str, dict[str, str]]:
    """`reg.exe query` output (with /s: one block per key) -> {key: {value name: data}}."""
    out: dict[str, dict[str, str]] = {}
    current = None
    for line in stdout.splitlines():
        if line.upper().startswith(_HIVE[:-1]):
            current = line.strip()
            out.setdefault(current, {})
        elif current and line.startswith("    ") and "    REG_" in line:
            name, _, rest = line.strip().partition("    ")
            _kind, _, data = rest.strip().partition("    ")
            out[current][name.strip()] = data.strip()
    return out


def parse(results: list[CmdResult], server: str) -> list[TlsSettings]:
    """A missing key (reg.exe's exit code 1 with 'unable to find') means nothing set there: Windows' default."""
    found: dict[str, str] = {}
    for line, result in zip(COMMAND_LINES, results, strict=True):
        if result.rc != 0:
            if "unable to find" in (result.stderr + result.stdout):
                continue
            why = (result.stderr or result.stdout).strip() or f"exit code {result.rc}"
            return [TlsSettings(short_name(server), (), f"{line}: {why}")]
        for key, values in _blocks(result.stdout).items():
            wanted = SCHANNEL_VALUES if "SCHANNEL" in key.upper() else DOTNET_VALUES
            for name, data in values.items():
                if name in wanted:
                    found[f"{_short(key)}\\{name}"] = data
    return [TlsSettings(short_name(server), tuple(sorted(found.items())))]


def _lines(server: str, expectations: Expectations) -> list[str]:
    return list(COMMAND_LINES)


def _parse(results: list[CmdResult], server: str, expectations: Expectations) -> list[TlsSettings]:
    return parse(results, server)


# SCHANNEL protocols and .NET's TLS switches, as HealthChecker reads them (DAG-wide parity).
SOURCE = HostSource("tls_settings", _lines, _parse)
