"""Build arithmetic: AdminDisplayVersion vs ExSetup.exe, parity across a DAG, and currency against the
shipped table of supported CUs and their latest SUs (dagcheck/data/exchange_builds.csv)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

Build = tuple[int, int, int, int]
TABLE = Path(__file__).resolve().parent.parent / "data" / "exchange_builds.csv"


def parse_build(text: str) -> Build:
    a, b, c, d = (int(p) for p in text.strip().split("."))
    return a, b, c, d


def show(build: Build) -> str:
    return ".".join(map(str, build))


@dataclass(frozen=True)
class SupportedCU:
    product: str
    cu: str
    cu_build: Build
    latest_su: str
    latest_su_build: Build
    latest_su_date: str


@cache
def supported_cus(path: Path = TABLE) -> tuple[SupportedCU, ...]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return tuple(
        SupportedCU(r["product"], r["cu"], parse_build(r["cu_build"]), r["latest_su"],
                    parse_build(r["latest_su_build"]), r["latest_su_date"])
        for r in csv.DictReader(lines)
    )


def cu_of(build: Build) -> SupportedCU | None:
    """The supported CU a build belongs to (same major.minor.build), or None."""
    return next((c for c in supported_cus() if c.cu_build[:3] == build[:3]), None)


def same_cu(admin_display_version: Build, exsetup: Build) -> bool:
    """AdminDisplayVersion shows the CU; ExSetup adds the SU revision: the first three parts must agree."""
    return admin_display_version[:3] == exsetup[:3]


def currency(exsetup: Build) -> str | None:
    """Why a server's build is not current, or None when it runs the latest SU of a supported CU."""
    cu = cu_of(exsetup)
    if cu is None:
        return (f"{show(exsetup)} is not a CU that still receives Security Updates "
                f"(supported: {', '.join(f'{c.product} {c.cu}' for c in supported_cus())})")
    if exsetup < cu.latest_su_build:
        return (f"{cu.product} {cu.cu} at {show(exsetup)} lacks {cu.latest_su} ({show(cu.latest_su_build)}, "
                f"{cu.latest_su_date})")
    return None
