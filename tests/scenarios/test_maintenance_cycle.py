"""Transitions through the pytest run itself, over the wire: the cycle, dry-run, a refused gate, the exit."""

from __future__ import annotations

from tests.conftest import lab_data


def test_cycle_with_apply_passes_every_phase(run_checks) -> None:
    result = run_checks(lab_data(), "--cycle", "--apply", "--server", "mbx1")
    assert result.exit_code == 0, result.messages
    phases = {p: [n for n in result.outcomes if f"[{p}-" in n] for p in ("preflight", "postflight")}
    assert phases["preflight"] and phases["postflight"]
    assert any("test_node_paused_and_not_pam" in n for n in result.outcomes)  # a maintenance check ran
    assert set(result.outcomes.values()) == {"passed"} | ({"skipped"} & set(result.outcomes.values()))


def test_maintenance_without_apply_changes_nothing_and_skips_the_verification(run_checks) -> None:
    result = run_checks(lab_data(), "--phase", "maintenance", "--server", "mbx1")
    assert result.exit_code == 0
    maintenance = {n: o for n, o in result.outcomes.items() if "test_node_paused_and_not_pam" in n}
    assert maintenance and set(maintenance.values()) == {"skipped"}


def test_failed_gate_refuses_once_and_the_maintenance_checks_are_not_run(run_checks) -> None:
    """One refusal, not 43 failures: the gate's failed checks fail as themselves, the refusal is reported
    once (the transition section and the last line), the checks of the phase never reached are skipped."""
    faults = [
        {"kind": "copy_suspended", "database": "DB01", "server": "mbx2"},
        {"kind": "copy_failed", "database": "DB01", "server": "mbx3"},
    ]
    result = run_checks(lab_data(faults), "--phase", "maintenance", "--server", "mbx1", "--apply")
    assert result.exit_code == 1
    maintenance = {n: o for n, o in result.outcomes.items() if "test_node_paused_and_not_pam" in n}
    assert maintenance and set(maintenance.values()) == {"skipped"}
    assert result.failed() and all("entering maintenance was refused" not in m for m in result.messages.values())
    assert result.short_failed() == {
        "test_replication_check_passes[mbx1:DatabaseRedundancy]",
        "test_active_database_has_a_redundant_copy[DB01\\mbx1]",
    }


def test_postflight_with_apply_brings_the_server_back(run_checks) -> None:
    result = run_checks(
        lab_data([{"kind": "in_maintenance", "server": "mbx1"}]), "--phase", "postflight", "--server", "mbx1", "--apply"
    )
    assert result.exit_code == 0, result.messages
    assert any("test_activation_restored" in n for n in result.outcomes)
