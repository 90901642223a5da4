"""The Windows Server build: CurrentBuildNumber of HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion (reg.exe over WinRS).

Which builds an Exchange build supports is a rule (dagcheck/rules/host.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult
from dagcheck.sources.base import HostSource
from dagcheck.sources.values import registry_values, short_name


@dataclass(frozen=True)
class WindowsBuild:
    """The OS build (HKLM\\...\\Windows NT\\CurrentVersion CurrentBuildNumber): 17763 is Windows Server 2019."""

    server: str
    build: int | None
    error: str | None = None

    @property
    def key(self) -> str:
        return self.server


WINDOWS_NT = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"


def parse_windows_build(results: list[CmdResult], server: str) -> list[WindowsBuild]:
    result = results[0]
    value = registry_values(result.stdout).get("CurrentBuildNumber")
    if result.rc != 0 or value is None or not value[1].strip().isdigit():
        why = (result.stderr or result.stdout).strip() or f"exit code {result.rc}"
        return [WindowsBuild(short_name(server), None, why)]
    return [WindowsBuild(short_name(server), int(value[1].strip()))]


def _lines(server: str, expectations: Expectations) -> list[str]:
    return [f'reg.exe query "{WINDOWS_NT}" /v CurrentBuildNumber']


def _parse(results: list[CmdResult], server: str, expectations: Expectations) -> list[WindowsBuild]:
    return parse_windows_build(results, server)


SOURCE = HostSource("windows_build", _lines, _parse)
