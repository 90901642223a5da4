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
    # hundreds of verdicts from a few dozen calls
    assert len(result.calls) < len(result.outcomes) / 4
