"""Every check passes on the healthy lab and fails, naming expected and actual, on its own fault.

Each run goes through the production path: pypsrp over HTTP to the lab's WSMan/PSRP endpoints.
"""

from __future__ import annotations

import pytest

from tests.conftest import lab_data

# fault -> exactly the checks (test[param]) that must turn red, and a phrase the message must hold.
MATRIX = [
    ({"kind": "copy_failed", "database": "DB01", "server": "mbx2"},
     {"test_database_copy_is_healthy[DB01\\mbx2]", "test_replication_check_passes[mbx2:DBCopyFailed]"},
     "DB01\\mbx2 is Failed"),
    ({"kind": "copy_suspended", "database": "DB02", "server": "mbx1"},
     {"test_database_copy_is_healthy[DB02\\mbx1]", "test_replication_check_passes[mbx1:DBCopySuspended]"},
     "expected: Healthy"),
    ({"kind": "copy_queue_high", "database": "DB03", "server": "mbx4", "count": 250},
     {"test_copy_queue_is_short[DB03\\mbx4]", "test_replication_check_passes[mbx4:DBLogCopyKeepingUp]"},
     "actual: 250"),
    ({"kind": "replay_queue_high", "database": "DB01", "server": "mbx3", "count": 5000},
     {"test_replay_queue_is_short[DB01\\mbx3]", "test_replication_check_passes[mbx3:DBLogReplayKeepingUp]"},
     "expected: at most 100"),
    ({"kind": "content_index_failed", "database": "DB02", "server": "mbx4"},
     {"test_content_index_is_healthy[DB02\\mbx4]"}, "content index is Failed"),
    ({"kind": "component_inactive", "server": "mbx2", "component": "HubTransport", "requester": "HealthApi"},
     {"test_component_is_active[mbx2:HubTransport]"}, "held Inactive by requester HealthApi"),
    ({"kind": "stuck_queue", "server": "mbx3", "count": 25},
     {"test_queue_is_not_backing_up[MBX3\\1000]"}, "holds 25 message(s), status Retry"),
    ({"kind": "poison_messages", "server": "mbx1", "count": 2},
     {"test_poison_queue_is_empty[mbx1]"}, "2 poison message(s)"),
    ({"kind": "service_stopped", "server": "mbx4", "service": "MSExchangeMailboxReplication"},
     {"test_required_services_running[mbx4:Client Access Server Role]"}, "MSExchangeMailboxReplication"),
    ({"kind": "replication_check_failed", "server": "mbx1", "check": "ClusterNetwork"},
     {"test_replication_check_passes[mbx1:ClusterNetwork]"}, "ClusterNetwork on mbx1 is Failed"),
    ({"kind": "witness_unavailable"},
     {f"test_replication_check_passes[mbx{i}:FileShareQuorum]" for i in range(1, 5)}, "FileShareQuorum"),
    ({"kind": "cluster_node_down", "server": "mbx4"},
     {"test_replication_check_passes[mbx4:ClusterService]"}
     | {f"test_replication_check_passes[mbx{i}:DagMembersUp]" for i in range(1, 5)}, "DagMembersUp"),
    ({"kind": "single_copy", "database": "DB04"},
     {"test_replication_check_passes[mbx4:DatabaseRedundancy]"}, "DatabaseRedundancy"),
    ({"kind": "cmdlet_error", "server": "mbx2", "cmdlet": "Get-Queue"},
     {"test_queue_is_not_backing_up[mbx2]", "test_poison_queue_is_empty[mbx2]"}, "Get-Queue failed"),
]


def test_healthy_lab_passes_every_check(run_checks) -> None:
    result = run_checks(lab_data())
    assert result.exit_code == 0, result.messages
    assert len(result.outcomes) > 200
    assert not result.failed()


@pytest.mark.parametrize("fault,expected,phrase", MATRIX, ids=[m[0]["kind"] for m in MATRIX])
def test_fault_turns_exactly_its_checks_red(run_checks, fault, expected, phrase) -> None:
    result = run_checks(lab_data([fault]))
    assert result.exit_code == 1
    assert result.short_failed() == expected
    messages = " | ".join(result.messages.values())
    assert phrase in messages
    assert "expected" in messages or "could not collect" in messages


def test_dropped_connection_fails_only_that_servers_checks(run_checks) -> None:
    result = run_checks(lab_data([{"kind": "dropped_connection", "server": "mbx3"}]))
    failed = result.short_failed()
    assert failed and all(name.endswith("[mbx3]") for name in failed), failed
    # every check still ran for the other servers, and passed
    ran = {n.replace("\\\\", "\\") for n in result.outcomes}
    assert any("[DB01\\mbx1]" in n for n in ran)
    assert all("connection dropped" in m or "connection" in m for m in result.messages.values())


def test_slow_cmdlet_still_answers(run_checks) -> None:
    result = run_checks(lab_data([{"kind": "slow_cmdlet", "server": "mbx1", "cmdlet": "Test-ServiceHealth", "seconds": 1.5}]),
                        "-k", "services")
    assert result.exit_code == 0 and result.outcomes


PREFLIGHT_MATRIX = [
    ({"kind": "pending_reboot", "server": "mbx2", "value": "cbs"},
     {"test_no_reboot_is_pending[mbx2]"}, "Component Based Servicing\\RebootPending"),
    ({"kind": "pending_reboot", "server": "mbx3", "value": "file_rename"},
     {"test_no_reboot_is_pending[mbx3]"}, "PendingFileRenameOperations"),
    ({"kind": "pending_reboot", "server": "mbx1", "value": "exchange_setup"},
     {"test_no_reboot_is_pending[mbx1]"}, "UpdateExeVolatile"),
    ({"kind": "low_disk", "server": "mbx4", "volume": "E:", "value": "3"},
     {"test_volume_has_free_space[mbx4:E:]"}, "mbx4:E: has 3.0 GB free"),
    ({"kind": "dotnet_outdated", "server": "mbx1", "value": "461814"},
     {"test_dotnet_meets_build_requirement[mbx1]"}, "needs 4.8 (release 528040)"),
    ({"kind": "service_stopped", "server": "mbx2", "service": "MSExchangeRepl"},
     {"test_windows_service_running[mbx2:MSExchangeRepl]", "test_required_services_running[mbx2:Mailbox Server Role]"}
     | {f"test_replication_check_passes[mbx2:{c}]" for c in
        ("ReplayService", "ActiveManager", "TasksRpcListener", "TcpListener", "ServerLocatorService")},
     "service MSExchangeRepl on mbx2 is STOPPED"),
]


def test_healthy_lab_passes_the_preflight(run_checks) -> None:
    result = run_checks(lab_data(), "--phase", "preflight")
    assert result.exit_code == 0, result.messages
    assert any("test_no_reboot_is_pending" in n for n in result.outcomes)


@pytest.mark.parametrize("fault,expected,phrase", PREFLIGHT_MATRIX,
                         ids=[f"{m[0]['kind']}-{m[0].get('value', m[0].get('service', ''))}" for m in PREFLIGHT_MATRIX])
def test_host_fault_turns_exactly_its_preflight_checks_red(run_checks, fault, expected, phrase) -> None:
    result = run_checks(lab_data([fault]), "--phase", "preflight")
    assert result.exit_code == 1
    assert result.short_failed() == expected
    assert phrase in " | ".join(result.messages.values())
