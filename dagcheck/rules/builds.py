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


@dataclass(frozen=True)
class RollingParity:
    """Parity while a patch window is in progress: every member on the old or the target build."""

    target: Build
    old: tuple[Build, ...]  # builds of the members not yet patched (more than one: a problem)
    patched: tuple[str, ...]
    left: tuple[str, ...]
    problem: str | None

    def progress(self) -> str:
        where = f" ({', '.join(self.left)} on {', '.join(map(show, self.old))})" if self.left else ""
        return (f"{len(self.patched)} of {len(self.patched) + len(self.left)} members on {show(self.target)}, "
                f"{len(self.left)} left{where}")


def rolling_parity(builds: dict[str, Build], target: Build | None) -> RollingParity:
    """Judge a mixed-build DAG during a window. Without a declared target, the newest build seen is the
    target (the one the patched members went to). The members not on the target must all be on one
    old build; a third build means a member was patched to something else, or a patch stopped half-way."""
    goal = target or max(builds.values())
    patched = tuple(sorted(m for m, b in builds.items() if b == goal))
    left = tuple(sorted(m for m, b in builds.items() if b != goal))
    old = tuple(sorted({builds[m] for m in left}))
    problem = None
    if len(old) > 1:
        problem = ("members not on the target " + show(goal) + " are on more than one build: "
                   + ", ".join(f"{m}={show(builds[m])}" for m in left))
    elif old and old[0] > goal:
        problem = f"{', '.join(left)} run {show(old[0])}, newer than the window's target {show(goal)}"
    return RollingParity(goal, old, patched, left, problem)
