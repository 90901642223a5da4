"""The nightly run knows planned maintenance (issue 10): planned is skipped with its reason, forgotten is one finding."""

from __future__ import annotations

import datetime as dt
import json

from tests.conftest import lab_data

IN_MAINTENANCE = [{"kind": "in_maintenance", "server": "mbx2"}]


def _stamp(hours: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat(timespec="seconds")


def _window(start: float, end: float, **extra) -> dict:
    return {"server": "mbx2", "start": _stamp(start), "end": _stamp(end), "reason": "CU15 install", "by": "jdoe", **extra}


def _mbx2(result) -> dict[str, str]:
    return {n: o for n, o in result.outcomes.items() if "mbx2" in n}


def test_member_in_a_current_window_is_planned_maintenance(run_checks) -> None:
    data = lab_data(IN_MAINTENANCE)
    data["maintenance_windows"] = [_window(-1, 2)]
    result = run_checks(data)
    assert result.failed() == set(), result.messages
    assert result.exit_code == 0
    skipped = [n for n, o in _mbx2(result).items() if o == "skipped"]
    assert len(skipped) > 30  # the 33 failures of the issue, now each skipped with the reason
    forgotten = [n for n in result.outcomes if "test_member_not_forgotten_in_maintenance[mbx2]" in n]
    assert forgotten and result.outcomes[forgotten[0]] == "passed"  # planned, and the DAG keeps quorum without it


def test_skip_reason_says_since_by_and_until(run_checks, tmp_path) -> None:
    data = lab_data(IN_MAINTENANCE)
    window = _window(-1, 2)
    data["maintenance_windows"] = [window]
    result = run_checks(data, "-rs")
    reasons = result.skip_reasons()
    cluster = next(r for n, r in reasons.items() if "test_cluster_node_up[mbx2]" in n)
    assert "mbx2 is in planned maintenance since " in cluster
    assert "by jdoe" in cluster and f"until {window['end']}" in cluster and "CU15 install" in cluster


def test_same_state_without_a_window_is_exactly_one_critical_finding(run_checks) -> None:
    result = run_checks(lab_data(IN_MAINTENANCE))
    assert result.short_failed() == {"test_member_not_forgotten_in_maintenance[mbx2]"}, result.short_failed()
    assert result.exit_code == 1
    message = next(iter(result.messages.values()))
    assert "mbx2 is forgotten in maintenance since " in message
    assert "no current maintenance window or transition covers it" in message
    reasons = result.skip_reasons()
    assert "covered by DAG-MAINT-001" in next(r for n, r in reasons.items() if "test_cluster_node_up[mbx2]" in n)


def test_past_the_window_end_is_one_critical_finding(run_checks) -> None:
    data = lab_data(IN_MAINTENANCE)
    data["maintenance_windows"] = [_window(-5, -1)]
    result = run_checks(data)
    assert result.short_failed() == {"test_member_not_forgotten_in_maintenance[mbx2]"}
    assert "its maintenance window ended " in next(iter(result.messages.values()))


def test_a_window_for_another_server_does_not_cover_it(run_checks) -> None:
    data = lab_data(IN_MAINTENANCE)
    data["maintenance_windows"] = [{**_window(-1, 2), "server": "mbx3"}]
    result = run_checks(data)
    assert result.short_failed() == {"test_member_not_forgotten_in_maintenance[mbx2]"}


def test_a_dag_window_covers_its_members_and_in_service_members_are_checked(run_checks) -> None:
    data = lab_data(IN_MAINTENANCE + [{"kind": "service_stopped", "server": "mbx3"}])
    window = _window(-1, 2)
    del window["server"]
    data["maintenance_windows"] = [{**window, "dag": "DAG1"}]
    result = run_checks(data)
    # mbx2 is planned; mbx3 is not in maintenance, so its stopped service still fails.
    assert result.failed() and all("mbx3" in n for n in result.failed()), result.short_failed()


def _old_build(*servers: str, value: str = "15.2.2562.17") -> list[dict]:
    return [{"kind": "build_mismatch", "server": s, "value": value} for s in servers]


def _parity(result) -> dict[str, str]:
    return {n.split("[", 1)[1].rstrip("]"): o for n, o in result.outcomes.items() if "test_build_same_across_dag[" in n}


def _dag_window(**extra) -> dict:
    window = _window(-1, 3, **extra)
    del window["server"]
    return {**window, "dag": "DAG1"}


def test_parity_during_a_window_accepts_old_and_target_and_says_how_many_are_left(run_checks, capsys) -> None:
    data = lab_data(_old_build("mbx1", "mbx2"))  # mbx3 and mbx4 already on the lab's 15.2.2562.49
    data["maintenance_windows"] = [_dag_window(target_build="15.2.2562.49")]
    result = run_checks(data)
    assert set(_parity(result).values()) == {"passed"}, result.messages
    out = capsys.readouterr().out
    assert "2 of 4 members on 15.2.2562.49, 2 left (mbx1, mbx2 on 15.2.2562.17)" in out


def test_parity_outside_a_window_stays_critical(run_checks) -> None:
    data = lab_data(_old_build("mbx1"))
    data["maintenance_windows"] = [{**_dag_window(target_build="15.2.2562.49"), "start": _stamp(-6), "end": _stamp(-4)}]
    result = run_checks(data)
    assert _parity(result)["mbx1"] == "failed"
    assert "unlike the DAG" in next(m for n, m in result.messages.items() if "test_build_same_across_dag[mbx1]" in n)


def test_parity_during_a_window_fails_a_third_build(run_checks) -> None:
    data = lab_data(_old_build("mbx1") + _old_build("mbx2", value="15.2.2562.20"))
    data["maintenance_windows"] = [_dag_window(target_build="15.2.2562.49")]
    result = run_checks(data)
    parity = _parity(result)
    assert parity["mbx1"] == parity["mbx2"] == "failed" and parity["mbx3"] == "passed"
    assert "more than one build" in next(m for n, m in result.messages.items() if "test_build_same_across_dag[mbx2]" in n)


def test_planned_member_whose_database_has_no_mounted_copy_elsewhere_fails(run_checks) -> None:
    # DB02 is active on mbx2; its other copies failed first, so entering maintenance could not move it.
    data = lab_data(
        [
            {"kind": "copy_failed", "database": "DB02", "server": "mbx1"},
            {"kind": "copy_failed", "database": "DB02", "server": "mbx4"},
        ]
        + IN_MAINTENANCE
    )
    data["maintenance_windows"] = [_window(-1, 2)]
    result = run_checks(data)
    assert result.outcomes[next(n for n in result.outcomes if "test_member_not_forgotten_in_maintenance[mbx2]" in n)] == "failed"
    message = next(m for n, m in result.messages.items() if "test_member_not_forgotten_in_maintenance[mbx2]" in n)
    assert "mbx2 is in planned maintenance since " in message and "no other member has mounted DB02" in message


def test_planned_member_and_the_rest_without_quorum_fails(run_checks) -> None:
    down = [{"kind": "cluster_node_down", "server": s} for s in ("mbx3", "mbx4")]
    data = lab_data(down + IN_MAINTENANCE)
    data["maintenance_windows"] = [_window(-1, 2)]
    result = run_checks(data)
    message = next(m for n, m in result.messages.items() if "test_member_not_forgotten_in_maintenance[mbx2]" in n)
    assert "with it down the DAG has 2 of 5 votes" in message


def _rolling_journal(tmp_path, *events: dict) -> None:
    reports = tmp_path / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "rolling-dag1.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")


def test_a_rolling_run_in_progress_is_a_window(run_checks, tmp_path, capsys) -> None:
    _rolling_journal(
        tmp_path,
        {
            "time": _stamp(-1),
            "event": "rolling_started",
            "dag": "DAG1",
            "target": "15.2.2562.49",
            "order": ["mbx4", "mbx3", "mbx2", "mbx1"],
        },
        {"time": _stamp(-0.5), "event": "member_done", "member": "mbx4"},
    )
    result = run_checks(lab_data(_old_build("mbx1", "mbx2") + IN_MAINTENANCE))
    # Only the warning DAG-BUILD-003 (mbx1 lacks the latest SU) remains: the gate passes.
    assert result.short_failed() == {"test_build_is_current[mbx1]"} and result.exit_code == 0, result.short_failed()
    assert set(_parity(result).values()) <= {"passed", "skipped"} and _parity(result)["mbx1"] == "passed"
    out = capsys.readouterr().out
    assert "2 of 4 members on 15.2.2562.49, 2 left (mbx1, mbx2 on 15.2.2562.17)" in out
    assert "mbx2 is in planned maintenance since " in out and "by dagcheck rolling (" in out


def test_a_completed_rolling_run_is_no_window(run_checks, tmp_path) -> None:
    _rolling_journal(
        tmp_path,
        {"time": _stamp(-3), "event": "rolling_started", "dag": "DAG1", "target": "15.2.2562.49"},
        {"time": _stamp(-1), "event": "rolling_completed", "dag": "DAG1"},
    )
    result = run_checks(lab_data(_old_build("mbx1")))
    assert _parity(result)["mbx1"] == "failed"


def test_a_member_not_answering_within_its_window_is_planned_not_failed(run_checks) -> None:
    """Rebooting after its patch, the member cannot be read: within its window that is planned maintenance
    (its checks skipped, saying it does not answer), and the DAG is judged with it down."""
    data = lab_data(IN_MAINTENANCE + [{"kind": "dropped_connection", "server": "mbx2"}])
    data["maintenance_windows"] = [_window(-1, 2)]
    result = run_checks(data, "-rs")
    assert result.failed() == set(), result.messages
    reasons = result.skip_reasons()
    mbx2 = [r for n, r in reasons.items() if "mbx2" in n and "forgotten" not in n]
    assert mbx2 and all("mbx2 is in planned maintenance since " in r and "not answering now" in r for r in mbx2)
    forgotten = [n for n in result.outcomes if "test_member_not_forgotten_in_maintenance[mbx2]" in n]
    assert forgotten and result.outcomes[forgotten[0]] == "passed"


def test_a_member_not_answering_outside_any_window_fails_its_checks(run_checks) -> None:
    result = run_checks(lab_data(IN_MAINTENANCE + [{"kind": "dropped_connection", "server": "mbx2"}]))
    assert result.short_failed() and all("mbx2" in n for n in result.short_failed())
    assert any("could not collect" in m for m in result.messages.values())


def test_forgotten_member_whose_activation_settings_failed_to_load_is_not_passed(run_checks) -> None:
    """Issue 23: the maintenance judgement needs Get-MailboxServer too; when it fails, DAG-MAINT-001 used to
    take "no judgement" for "in service" and pass. It fails as could not collect, with the reason."""
    result = run_checks(lab_data(IN_MAINTENANCE + [{"kind": "cmdlet_error", "server": "mbx2", "cmdlet": "Get-MailboxServer"}]))
    name = next(n for n in result.outcomes if "test_member_not_forgotten_in_maintenance[mbx2]" in n)
    assert result.outcomes[name] == "failed"
    assert "could not collect" in result.messages[name] and "Get-MailboxServer" in result.messages[name]


def test_planned_member_not_answering_is_judged_by_the_databases_the_others_list(run_checks) -> None:
    """Issue 23: with the member rebooting in its window its own copies cannot be read; the databases it holds
    come from the others' Get-MailboxDatabase (ActivationPreference), so DB02, mounted nowhere else, still
    fails DAG-MAINT-001 instead of passing for want of the member's list."""
    data = lab_data(
        [
            {"kind": "copy_failed", "database": "DB02", "server": "mbx1"},
            {"kind": "copy_failed", "database": "DB02", "server": "mbx4"},
        ]
        + IN_MAINTENANCE
        + [{"kind": "dropped_connection", "server": "mbx2"}]
    )
    data["maintenance_windows"] = [_window(-1, 2)]
    result = run_checks(data)
    name = next(n for n in result.outcomes if "test_member_not_forgotten_in_maintenance[mbx2]" in n)
    assert result.outcomes[name] == "failed", result.messages
    assert "no other member has mounted DB02" in result.messages[name]
