"""DAG-wide consistency (dagcheck/rules/consistency.py): TLS values compared with the majority, clocks
judged with the call's own time."""

from __future__ import annotations

import datetime as dt

from dagcheck.rules.consistency import clock_findings, tls_differences
from dagcheck.sources.clock import ClockReading


def test_the_member_off_the_majority_is_named_with_the_others_values() -> None:
    base = {"TLS 1.0\\Server\\Enabled": "0x0", "SchUseStrongCrypto": "0x1"}
    settings = {"ex1": base, "ex2": base, "ex3": {"TLS 1.0\\Server\\Enabled": "0x1"}}
    assert tls_differences("ex3", settings) == [
        "SchUseStrongCrypto = not set (others: 0x1 on ex1, 0x1 on ex2)",
        "TLS 1.0\\Server\\Enabled = 0x1 (others: 0x0 on ex1, 0x0 on ex2)",
    ]
    assert tls_differences("ex1", settings) == []


T0 = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)


def _reading(name: str, ahead: float, round_trip: float = 0.2) -> ClockReading:
    return ClockReading(name, T0 + dt.timedelta(seconds=round_trip / 2 + ahead), T0, T0 + dt.timedelta(seconds=round_trip))


def test_a_skewed_member_is_judged_against_the_jump_host_and_the_others() -> None:
    readings = {"ex1": _reading("ex1", 0.5), "ex2": _reading("ex2", -1), "ex3": _reading("ex3", 300)}
    assert clock_findings("ex3", readings) == [
        "ex3's clock is 300.0 s ahead of the jump host (± 0.10 s for the call)",
        "ex3's clock is 300.2 s ahead of the other members' (ex1, ex2)",
    ]
    assert clock_findings("ex1", readings) == []


def test_a_slow_call_gives_the_benefit_of_its_round_trip() -> None:
    """A reading 61 s off over a call that took 4 s may be 59 s off: not judged a skew."""
    assert clock_findings("ex1", {"ex1": _reading("ex1", 61, round_trip=4)}) == []
    assert clock_findings("ex1", {"ex1": _reading("ex1", 63, round_trip=4)})


def test_replayed_readings_are_compared_with_each_other_only() -> None:
    saved = {n: ClockReading(n, T0 + dt.timedelta(seconds=s), None, None) for n, s in (("ex1", 0), ("ex2", 2), ("ex3", -120))}
    assert clock_findings("ex3", saved) == ["ex3's clock is 121.0 s behind the other members' (ex1, ex2)"]
    assert clock_findings("ex2", saved) == []
