"""Whether Windows or Exchange setup waits for a reboot: registry keys and the Configuration Manager client (WinRS).

The checks HealthChecker makes (CSS-Exchange Shared/Get-ServerRebootPending.ps1): servicing and Windows
Update keys, a pending file rename, Exchange setup's UpdateExeVolatile Flags, and SCCM's own verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult
from dagcheck.sources.base import HostSource
from dagcheck.sources.values import registry_values, short_name


@dataclass(frozen=True)
class RebootIndicator:
    server: str
    source: str  # what says so: a registry key or value
    detail: str


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


# The Configuration Manager (SCCM) client's own verdict, read as HealthChecker reads it (Get-ServerRebootPending:
# Invoke-CimMethod -Namespace Root\ccm\clientSDK -ClassName CCM_ClientUtilities -Name DetermineIfRebootPending;
# RebootPending or IsHardRebootPending). Without the client the namespace does not exist: not a reboot.
CCM_COMMAND = (
    'powershell.exe -NoProfile -NonInteractive -Command "Invoke-CimMethod -Namespace root\\ccm\\ClientSDK '
    "-ClassName CCM_ClientUtilities -MethodName DetermineIfRebootPending | Format-List RebootPending,"
    'IsHardRebootPending"'
)


def reboot_command_lines(server: str) -> list[str]:
    return [f'reg.exe query "{key}"' for key in REBOOT_KEYS] + [
        f'reg.exe query "{SESSION_MANAGER}" /v PendingFileRenameOperations',
        f'reg.exe query "{UPDATE_EXE_VOLATILE}" /v Flags',
        CCM_COMMAND,
    ]


def parse_reboot(results: list[CmdResult], server: str) -> list[RebootIndicator]:
    name = short_name(server)
    indicators = [
        RebootIndicator(name, key, "key exists") for key, result in zip(REBOOT_KEYS, results, strict=False) if result.rc == 0
    ]
    rest = results[len(REBOOT_KEYS) :]
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
            indicators.append(
                RebootIndicator(
                    name,
                    "root\\ccm\\ClientSDK CCM_ClientUtilities.DetermineIfRebootPending",
                    ", ".join(f"{k} True" for k in pending),
                )
            )
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


def _lines(server: str, expectations: Expectations) -> list[str]:
    return reboot_command_lines(server)


def _parse(results: list[CmdResult], server: str, expectations: Expectations) -> list[RebootIndicator]:
    return parse_reboot(results, server)


SOURCE = HostSource("pending_reboot", _lines, _parse)
