"""Free space on the volumes the inventory names: `fsutil volume diskfree X:` per volume (WinRS).

Exchange setup refuses a CU without room on the install volume (the rule is dagcheck/rules/host.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult
from dagcheck.sources.base import HostSource
from dagcheck.sources.values import short_name


@dataclass(frozen=True)
class VolumeSpace:
    server: str
    volume: str
    free_bytes: int | None
    total_bytes: int | None
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.server}:{self.volume}"


def parse_diskfree(server: str, volume: str, rc: int, stdout: str, stderr: str) -> VolumeSpace:
    """`fsutil volume diskfree X:`; newer builds add thousands separators and '( 1.2 GB)'."""
    numbers: dict[str, int] = {}
    for line in stdout.splitlines():
        label, sep, value = line.partition(":")
        if sep:
            digits = value.split("(")[0].replace(",", "").replace(".", "").strip()
            if digits.isdigit():
                # 2019 prints "Total # of free bytes", 2022 "Total free bytes": one key for both.
                numbers[" ".join(label.replace("# of ", "").split()).lower()] = int(digits)
    free, total = numbers.get("total free bytes"), numbers.get("total bytes")
    if rc != 0 or free is None or total is None:
        return VolumeSpace(short_name(server), volume, None, None, (stderr or stdout).strip() or f"exit code {rc}")
    return VolumeSpace(short_name(server), volume, free, total)


def _lines(server: str, expectations: Expectations) -> list[str]:
    return [f"fsutil volume diskfree {v}" for v in expectations.host_volumes]


def _parse(results: list[CmdResult], server: str, expectations: Expectations) -> list[VolumeSpace]:
    return [parse_diskfree(server, v, r.rc, r.stdout, r.stderr) for v, r in zip(expectations.host_volumes, results, strict=True)]


SOURCE = HostSource("volumes", _lines, _parse)
