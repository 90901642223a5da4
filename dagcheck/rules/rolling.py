"""Rules of a rolling patch: the order members go in, and what a target build needs before a member's turn.

Pure functions over facts already read (no I/O), so the order and the target gate can be tested and
explained without a server.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagcheck.rules.builds import Build, cu_of, show
from dagcheck.rules.host import dotnet_name, required_dotnet, supported_windows, windows_name


@dataclass(frozen=True)
class MemberFacts:
    """What decides a member's place in the order."""

    name: str
    active_databases: int
    copies: int
    holds_pam: bool


def rolling_order(members: list[MemberFacts]) -> list[MemberFacts]:
    """The order members are patched in, cheapest absence first:

    1. the Primary Active Manager last: its maintenance must move the PAM role (a cluster group move,
       pausing alone does not), and the member that holds it should be patched once the others already run
       the new build;
    2. fewest mounted (active) databases first: each is a switchover users notice;
    3. fewest database copies: fewer copies to resynchronise after the reboot;
    4. then by name, so the order is the same on every run.
    """
    return sorted(members, key=lambda m: (m.holds_pam, m.active_databases, m.copies, m.name.lower()))


def explain(member: MemberFacts) -> str:
    return f"{member.active_databases} active database(s), {member.copies} copie(s)" + (
        ", holds the PAM (last)" if member.holds_pam else ""
    )


def target_problems(
    target: Build,
    member: str,
    build: Build,
    dotnet_release: int | None,
    others: dict[str, Build],
    windows_build: int | None = None,
) -> list[str]:
    """Why `member` (now on `build`, with .NET `dotnet_release`) cannot go to `target`; [] when it can.

    - the target must be a CU that still gets Security Updates (dagcheck/data/exchange_builds.csv): an SU is
      CU-specific, so the target names its CU, and the installer goes straight to that CU, then its SU;
    - no downgrade and no change of product line (15.1 and 15.2 cannot share a DAG);
    - the .NET Framework the target CU needs (rules.host.required_dotnet) is installed, and the member runs a
      Windows Server version the target supports (rules.host.supported_windows); None: it could not be read;
    - every other member is on the target or on a build the target can coexist with during the window:
      the same major.minor, and not newer than the target.
    """
    problems = []
    cu = cu_of(target)
    if cu is None:
        problems.append(
            f"target {show(target)} is not a CU that still receives Security Updates (dagcheck/data/exchange_builds.csv)"
        )
    elif target != cu.cu_build and target != cu.latest_su_build and target > cu.latest_su_build:
        problems.append(
            f"target {show(target)} is newer than the latest SU dagcheck knows for {cu.product} {cu.cu} "
            f"({show(cu.latest_su_build)}): update the build table first"
        )
    if build[:2] != target[:2]:
        problems.append(f"{member} runs {show(build)}: {show(target)} is another product line, not an update of it")
    elif build > target:
        problems.append(f"{member} already runs {show(build)}, newer than the target {show(target)} (no downgrades)")
    need = required_dotnet(target, windows_build)
    if dotnet_release is None:
        problems.append(f"the .NET Framework release on {member} could not be read (the target needs {dotnet_name(need)})")
    elif dotnet_release < need:
        problems.append(
            f"{member} has .NET Framework {dotnet_name(dotnet_release)}; {show(target)} needs "
            f"{dotnet_name(need)}: install it first"
        )
    supported = supported_windows(target)
    if windows_build is None:
        problems.append(
            f"the Windows Server version of {member} could not be read (the target runs on "
            f"{', '.join(supported.values()) or 'no Windows Server dagcheck knows'})"
        )
    elif windows_build not in supported:
        problems.append(
            f"{member} runs {windows_name(windows_build)}; {show(target)} is supported on "
            f"{', '.join(supported.values()) or 'no Windows Server dagcheck knows'} only"
        )
    for other, other_build in sorted(others.items()):
        if other_build[:2] != target[:2]:
            problems.append(f"{other} runs {show(other_build)}, which cannot share a DAG with {show(target)}")
        elif other_build > target:
            problems.append(f"{other} runs {show(other_build)}, newer than the target {show(target)}")
    return problems


def window_parity(target: Build | None, builds: dict[str, Build], before: dict[str, Build]) -> list[str]:
    """During the rolling window: every member is on its build from before the run or on the target."""
    if target is None:
        return []
    return [
        f"{m} runs {show(b)}: neither its build before this rolling run ({show(before[m]) if m in before else 'unknown'}) "
        f"nor the target {show(target)}"
        for m, b in sorted(builds.items())
        if b != target and b != before.get(m)
    ]
