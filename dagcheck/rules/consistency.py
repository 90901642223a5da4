"""DAG-wide consistency: the same Windows Server version and TLS settings on every member, clocks that agree."""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from dagcheck.rules.dag import odd_ones_out
from dagcheck.sources.clock import ClockReading

CLOCK_TOLERANCE = 60.0  # seconds; Kerberos allows 5 minutes, dagcheck's lease and log ordering want far less


def tls_differences(server: str, settings: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Each TLS value on which `server` differs from the DAG's majority, as 'name: this (others: x on a, b)'.
    settings: member -> {value path: data}; an absent value is shown as 'not set'."""
    names = sorted({n for values in settings.values() for n in values})
    out = []
    for name in names:
        per_member = {m: values.get(name, "not set") for m, values in settings.items()}
        odd = odd_ones_out(per_member)
        if server.lower() in odd:
            others = ", ".join(f"{v} on {m}" for m, v in per_member.items() if m != server.lower())
            out.append(f"{name} = {per_member[server.lower()]} (others: {others})")
    return out


def clock_findings(server: str, readings: Mapping[str, ClockReading], tolerance: float = CLOCK_TOLERANCE) -> list[str]:
    """Why this member's clock is off: against the jump host (offset beyond the tolerance plus half the call's
    round trip), and against the other members' median. Live readings compare offsets (each call's own time
    cancels out); replayed ones, which carry no timing, compare the readings themselves."""
    mine = readings[server.lower()]
    findings = []
    if mine.offset is not None and abs(mine.offset) - mine.uncertainty > tolerance:
        findings.append(
            f"{mine.server}'s clock is {abs(mine.offset):.1f} s {'ahead of' if mine.offset > 0 else 'behind'} "
            f"the jump host (± {mine.uncertainty:.2f} s for the call)"
        )
    others = [r for m, r in readings.items() if m != server.lower()]
    if not others:
        return findings
    live = all(r.offset is not None for r in (mine, *others))

    def position(r: ClockReading) -> float:
        # Live: the offset (each call's own duration cancels out); replayed: the reading itself.
        return r.offset if live else r.server_time.timestamp()  # type: ignore[return-value]

    def apart(r: ClockReading) -> float:
        return position(mine) - position(r)

    # Off when it disagrees with more than half of the others (with two members, both say so: the jump
    # host's comparison above tells which one is wrong).
    agree = [r for r in others if abs(apart(r)) - (mine.uncertainty + r.uncertainty) <= tolerance]
    if len(agree) * 2 < len(others):
        gap = statistics.median(apart(r) for r in others)
        findings.append(
            f"{mine.server}'s clock is {abs(gap):.1f} s {'ahead of' if gap > 0 else 'behind'} the "
            f"other members' ({', '.join(sorted(r.server for r in others))})"
        )
    return findings
