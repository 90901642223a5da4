"""The installed Exchange build with its Security Update: ExSetup.exe's FileVersionInfo (Windows endpoint).

AdminDisplayVersion shows the CU level only; an SU changes ExSetup.exe's file version, which is what
HealthChecker reads (`Get-Command ExSetup.exe | % FileVersionInfo`; EXCHANGE-NOTES "Lessons" 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import integer, prop, short_name


@dataclass(frozen=True)
class FileVersion:
    file_name: str
    version: tuple[int, int, int, int]
    server: str = ""

    @property
    def key(self) -> str:
        return self.server


def parse_file_version(obj: Any, server: str = "") -> FileVersion:
    cmdlet = "Get-Command ExSetup.exe"
    version = tuple(integer(obj, cmdlet, k) for k in ("FileMajorPart", "FileMinorPart", "FileBuildPart", "FilePrivatePart"))
    return FileVersion(str(prop(obj, "FileName") or ""), version, short_name(server))  # type: ignore[arg-type]


def command(server: str) -> Command:
    return Command.of("Get-Command", member="FileVersionInfo", Name="ExSetup.exe")


SOURCE = Source("exsetup", Endpoint.WINDOWS, command, parse_file_version)
