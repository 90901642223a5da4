"""Collect once, evaluate many: one remote call per command per server per phase, whatever reads it."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import lab_data


@pytest.mark.parametrize("args", [[], ["--phase", "preflight"]], ids=["health", "preflight"])
def test_each_command_runs_once_per_server(run_checks, args) -> None:
    result = run_checks(lab_data(), *args)
    assert result.exit_code == 0 and len(result.outcomes) > 300
    counts = Counter(result.calls)
    assert counts and max(counts.values()) == 1, [c for c, n in counts.items() if n > 1]
    servers = {server for server, _, _ in result.calls}
    assert servers == {"mbx1", "mbx2", "mbx3", "mbx4"}
    # hundreds of verdicts from a few dozen calls (PowerShell and WinRS; the protocols' health pages are eight
    # anonymous GETs per server, each asked once as asserted above, and not counted here)
    sessions = [c for c in result.calls if not c[2].startswith("Invoke-WebRequest")]
    assert len(sessions) < len(result.outcomes) / 4


def test_a_cycle_reads_each_phase_once(run_checks) -> None:
    """Pre-flight, maintenance and post-maintenance each read a command at most once per server; the
    transitions' own polling reads are not snapshots and are not counted here."""
    result = run_checks(lab_data(), "--cycle", "--apply", "--server", "mbx1")
    assert result.exit_code == 0
    # Get-ClientAccessService is read only by checks (never by a transition): once in each of the three
    # phases for the maintenance server, even though the phases after a transition were enumerated
    # before it.
    reads = Counter(result.calls)
    assert reads[("mbx1", "exchange", "Get-ClientAccessService -Identity mbx1")] == 3
    assert reads[("mbx2", "exchange", "Get-ClientAccessService -Identity mbx2")] == 2  # pre-flight, maintenance
