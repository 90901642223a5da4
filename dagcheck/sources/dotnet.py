"""The installed .NET Framework: the Release value of the NDP v4 Full registry key (reg.exe over WinRS).

Learn, "Determine which .NET Framework versions are installed"; which release a build needs is a rule
(dagcheck/rules/host.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult
from dagcheck.sources.base import HostSource
from dagcheck.sources.values import registry_values, short_name


@dataclass(frozen=True)
class DotNetRelease:
    server: str
    release: int | None
    error: str | None = None

    @property
    def key(self) -> str:
        return self.server


NDP_FULL = r"HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full"


def parse_dotnet(results: list[CmdResult], server: str) -> list[DotNetRelease]:
    result = results[0]
    value = registry_values(result.stdout).get("Release")
    if result.rc != 0 or value is None:
        return [DotNetRelease(short_name(server), None, (result.stderr or result.stdout).strip() or f"exit code {result.rc}")]
    return [DotNetRelease(short_name(server), int(value[1], 0))]


def _lines(server: str, expectations: Expectations) -> list[str]:
    return [f'reg.exe query "{NDP_FULL}" /v Release']


def _parse(results: list[CmdResult], server: str, expectations: Expectations) -> list[DotNetRelease]:
    return parse_dotnet(results, server)


SOURCE = HostSource("dotnet", _lines, _parse)
