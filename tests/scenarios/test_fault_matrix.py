"""Every check passes on the healthy lab and fails, naming expected and actual, on its own fault.

Each run goes through the production path: pypsrp over HTTP (and WinRS) to the lab's endpoints.
A case lists exactly the checks that must turn red, a phrase the failure must say, and the gate's
exit status (a run whose only failures are warning-severity checks passes the gate).
"""

from __future__ import annotations

import pytest

from dagcheck.lab.products import COMPONENTS_2019 as COMPONENTS
from tests.conftest import lab_data

ALL = [f"mbx{i}" for i in range(1, 5)]
PROTOCOLS = ["OWA", "ECP", "EWS", "Microsoft-Server-ActiveSync", "Autodiscover", "MAPI", "RPC", "OAB"]
OFFLINE = [c for c in COMPONENTS if c not in ("Monitoring", "RecoveryActionsEnabled", "ForwardSyncDaemon", "ProvisioningRps")]
MM = {"kind": "in_maintenance", "server": "mbx1"}
PRE, MAINT, POST = (
    ["--phase", "preflight", "--server", "mbx1"],
    ["--phase", "maintenance", "--server", "mbx1"],
    ["--phase", "postflight", "--server", "mbx1"],
)


def repl(server: str, *checks: str) -> set[str]:
    return {f"test_replication_check_passes[{server}:{c}]" for c in checks}


CASES = [
    # ---- health (the nightly run, every server) -------------------------------------------------
    (
        "copy_failed",
        [{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}],
        [],
        {"test_database_copy_is_healthy[DB01\\mbx2]"} | repl("mbx2", "DBCopyFailed"),
        "DB01\\mbx2 is Failed",
        1,
    ),
    (
        "copy_suspended",
        [{"kind": "copy_suspended", "database": "DB02", "server": "mbx1"}],
        [],
        {"test_database_copy_is_healthy[DB02\\mbx1]"} | repl("mbx1", "DBCopySuspended"),
        "expected: Healthy",
        1,
    ),
    (
        "copy_queue_high",
        [{"kind": "copy_queue_high", "database": "DB03", "server": "mbx4", "count": 250}],
        [],
        {"test_copy_queue_is_short[DB03\\mbx4]"} | repl("mbx4", "DBLogCopyKeepingUp"),
        "actual: 250",
        1,
    ),
    (
        "replay_queue_high",
        [{"kind": "replay_queue_high", "database": "DB01", "server": "mbx3", "count": 5000}],
        [],
        {"test_replay_queue_is_short[DB01\\mbx3]"} | repl("mbx3", "DBLogReplayKeepingUp"),
        "expected: at most 49",
        1,
    ),
    (
        "content_index_failed (warning)",
        [{"kind": "content_index_failed", "database": "DB02", "server": "mbx4"}],
        [],
        {"test_content_index_is_healthy[DB02\\mbx4]"},
        "content index is Failed",
        0,
    ),
    (
        "component_inactive",
        [{"kind": "component_inactive", "server": "mbx2", "component": "HubTransport", "requester": "HealthApi"}],
        [],
        {"test_component_is_active[mbx2:HubTransport]"},
        "held Inactive by requester HealthApi",
        1,
    ),
    (
        "stuck_queue",
        [{"kind": "stuck_queue", "server": "mbx3", "count": 25}],
        [],
        {"test_queue_is_not_backing_up[MBX3\\1000]"},
        "holds 25 message(s), status Retry",
        1,
    ),
    (
        "poison_messages (warning)",
        [{"kind": "poison_messages", "server": "mbx1", "count": 2}],
        [],
        {"test_poison_queue_is_empty[mbx1]"},
        "2 poison message(s)",
        0,
    ),
    (
        "service_stopped",
        [{"kind": "service_stopped", "server": "mbx4", "service": "MSExchangeMailboxReplication"}],
        [],
        {"test_required_services_running[mbx4:Client Access Server Role]"},
        "MSExchangeMailboxReplication",
        1,
    ),
    (
        "replication_check_failed",
        [{"kind": "replication_check_failed", "server": "mbx1", "check": "ClusterNetwork"}],
        [],
        repl("mbx1", "ClusterNetwork"),
        "ClusterNetwork on mbx1 is Failed",
        1,
    ),
    (
        "witness_unavailable",
        [{"kind": "witness_unavailable"}],
        [],
        set().union(*(repl(s, "FileShareQuorum") for s in ALL)) | {f"test_witness_share_in_use[{s}]" for s in ALL},
        "WitnessShareInUse is InvalidConfiguration",
        1,
    ),
    (
        "cluster_node_down",
        [{"kind": "cluster_node_down", "server": "mbx4"}],
        [],
        repl("mbx4", "ClusterService")
        | set().union(*(repl(s, "DagMembersUp") for s in ALL))
        | {"test_cluster_node_up[mbx4]"}
        | {f"test_all_members_operational[{s}]" for s in ALL},
        "mbx4 not operational",
        1,
    ),
    (
        "single_copy",
        [{"kind": "single_copy", "database": "DB04"}],
        [],
        repl("mbx4", "DatabaseRedundancy"),
        "DatabaseRedundancy",
        1,
    ),
    (
        "cmdlet_error",
        [{"kind": "cmdlet_error", "server": "mbx2", "cmdlet": "Get-Queue"}],
        [],
        {"test_queue_is_not_backing_up[mbx2]", "test_poison_queue_is_empty[mbx2]"},
        "Get-Queue failed",
        1,
    ),
    (
        "ep_mismatch",
        [{"kind": "ep_mismatch", "server": "mbx2", "vdir": "Autodiscover (Default Web Site)", "value": "Require"}],
        [],
        {
            "test_extended_protection_matches[mbx2:Autodiscover (Default Web Site)]",
            "test_extended_protection_same_across_dag[mbx2:Autodiscover (Default Web Site)]",
            "test_iis_extended_protection_matches[mbx2:Default Web Site/Autodiscover]",
        },
        "higher than expected",
        1,
    ),
    (
        "ep_lower",
        [{"kind": "ep_mismatch", "server": "mbx3", "vdir": "EWS (Exchange Back End)", "value": "None"}],
        [],
        {
            "test_extended_protection_matches[mbx3:EWS (Exchange Back End)]",
            "test_extended_protection_same_across_dag[mbx3:EWS (Exchange Back End)]",
            "test_iis_extended_protection_matches[mbx3:Exchange Back End/EWS]",
        },
        "no IP allow-list mitigates it",
        1,
    ),
    (
        "ep_backend_ecp_removed",
        [{"kind": "ep_mismatch", "server": "mbx2", "vdir": "Exchange Back End/ecp", "value": "None"}],
        [],
        {
            "test_extended_protection_matches[mbx2:ecp (Exchange Back End)]",
            "test_extended_protection_same_across_dag[mbx2:ecp (Exchange Back End)]",
            "test_iis_extended_protection_matches[mbx2:Exchange Back End/ecp]",
        },
        "Exchange Back End/ecp on mbx2 has tokenChecking None",
        1,
    ),
    # Only IIS shows the back end's MAPI applications: the cmdlet checks stay green.
    (
        "ep_backend_emsmdb_removed",
        [{"kind": "ep_mismatch", "server": "mbx1", "vdir": "Exchange Back End/mapi/emsmdb", "value": "None"}],
        [],
        {"test_iis_extended_protection_matches[mbx1:Exchange Back End/mapi/emsmdb]"},
        "expected: Require",
        1,
    ),
    (
        "ep_cmdlet_differs",
        [{"kind": "ep_cmdlet_differs", "server": "mbx4", "vdir": "owa (Default Web Site)", "value": "None"}],
        [],
        {
            "test_extended_protection_matches[mbx4:owa (Default Web Site)]",
            "test_extended_protection_same_across_dag[mbx4:owa (Default Web Site)]",
            "test_cmdlet_and_iis_agree_on_extended_protection[mbx4:Default Web Site/owa]",
        },
        "the cmdlet shows ExtendedProtectionTokenChecking None but applicationHost.config has tokenChecking Require",
        1,
    ),
    (
        "iis_config_truncated",
        [{"kind": "iis_config", "server": "mbx3", "value": "truncated"}],
        [],
        {
            "test_iis_extended_protection_matches[mbx3]",
            "test_cmdlet_and_iis_agree_on_extended_protection[mbx3]",
            "test_iis_ssl_flags_match[mbx3]",
            "test_outlook_anywhere_not_offloading_ssl_with_extended_protection[mbx3:Rpc (Default Web Site)]",
        },
        "applicationHost.config is not well-formed XML",
        1,
    ),
    (
        "scp_wrong_uri",
        [{"kind": "scp_wrong_uri", "server": "mbx3"}],
        [],
        {"test_scp_uri_is_expected[mbx3]"},
        "publishes https://mail.wrong.test",
        1,
    ),
    (
        "scp_missing_site (warning)",
        [{"kind": "scp_missing_site", "server": "mbx4", "site": "Site-B"}],
        [],
        {"test_site_scope_is_expected[mbx4]"},
        "AutoDiscoverSiteScope lacks Site-B",
        0,
    ),
    (
        "build_su_behind",
        [{"kind": "build_mismatch", "server": "mbx2", "value": "15.2.2562.46"}],
        [],
        {"test_build_is_current[mbx2]", "test_build_same_across_dag[mbx2]"},
        "lacks Sep26SU",
        1,
    ),
    # Setup stopped half-way between 2019 CU15 and SE: the binaries are still 2019's, so the product is also
    # out of support (DAG-BUILD-004), while DAG-BUILD-003 leaves that verdict to it.
    (
        "build_half_installed_cu",
        [{"kind": "build_mismatch", "server": "mbx1", "value": "15.2.1748.49"}],
        [],
        {
            "test_admin_display_version_matches_exsetup[mbx1]",
            "test_build_same_across_dag[mbx1]",
            "test_product_and_cu_supported[mbx1]",
        },
        "AdminDisplayVersion Exchange Server SE RTM (15.2.2562.17) but ExSetup.exe Exchange 2019 CU15 Aug26SU (15.2.1748.49)",
        1,
    ),
    (
        "local_remote_disagree (warning)",
        [
            {
                "kind": "component_inactive",
                "server": "mbx3",
                "component": "OwaProxy",
                "requester": "Functional",
                "value": "local_only",
            }
        ],
        [],
        {
            "test_component_is_active[mbx3:OwaProxy]",
            "test_local_and_remote_states_agree[mbx3:OwaProxy]",
            "test_protocol_answers_health_page[mbx3:OWA]",
        },  # OwaProxy Inactive: OWA's health page answers 503
        "Functional is Inactive in the registry but Active in AD",
        1,
    ),
    (
        "mapi_fails",
        [{"kind": "service_stopped", "server": "mbx3", "service": "MSExchangeIS"}],
        [],
        {
            "test_mapi_connectivity[DB03@mbx3]",
            "test_database_is_mounted[DB03]",
            "test_required_services_running[mbx3:Mailbox Server Role]",
        },
        "MAPI logon to DB03 on mbx3 gave Failure",
        1,
    ),
    (
        "health_set_unhealthy",
        [{"kind": "health_set_unhealthy", "server": "mbx2", "health_set": "OWA.Protocol"}],
        [],
        {"test_no_health_set_is_unhealthy[mbx2]"},
        "mbx2: health set OWA.Protocol is Unhealthy: monitor OwaSelfTestMonitor",
        1,
    ),
    (
        "app_pool_stopped",
        [{"kind": "app_pool_stopped", "server": "mbx3", "pool": "MSExchangeServicesAppPool"}],
        [],
        # Managed Availability's EWS probes go through that pool: EWS.Protocol turns Unhealthy with it.
        {"test_exchange_app_pool_started[mbx3:MSExchangeServicesAppPool]", "test_no_health_set_is_unhealthy[mbx3]"},
        "application pool MSExchangeServicesAppPool on mbx3 is Stopped",
        1,
    ),
    (
        "web_site_stopped",
        [{"kind": "web_site_stopped", "server": "mbx4", "site": "Exchange Back End"}],
        [],
        {"test_exchange_web_sites_started[mbx4]", "test_no_health_set_is_unhealthy[mbx4]"},
        "on mbx4: Exchange Back End is Stopped",
        1,
    ),
    (
        "service_disabled",
        [{"kind": "service_disabled", "server": "mbx1", "service": "MSExchangeTransport"}],
        [],
        {"test_exchange_service_not_disabled[mbx1:MSExchangeTransport]"},
        "service MSExchangeTransport on mbx1 starts Disabled (now Running)",
        1,
    ),
    (
        "protocol_unhealthy",
        [{"kind": "protocol_unhealthy", "server": "mbx2", "protocol": "OWA"}],
        [],
        {"test_protocol_answers_health_page[mbx2:OWA]"},
        "OWA on mbx2 is not healthy",
        1,
    ),
    (
        "protocol_unhealthy_activesync",
        [{"kind": "protocol_unhealthy", "server": "mbx4", "protocol": "Microsoft-Server-ActiveSync"}],
        [],
        {"test_protocol_answers_health_page[mbx4:Microsoft-Server-ActiveSync]"},
        "gave HTTP 503",
        1,
    ),
    # The Auth certificate is the organisation's: every server fails, and Get-ExchangeCertificate degrades to RawData.
    (
        "auth_certificate_expired",
        [{"kind": "auth_certificate_expired"}],
        [],
        {f"test_auth_certificate_valid[{s}]" for s in ALL},
        "the Auth certificate CN=Microsoft Exchange Server Auth Certificate (",
        1,
    ),
    (
        "certificate_expiring",
        [{"kind": "certificate_expiring", "server": "mbx3", "days": 5}],
        [],
        {"test_certificates_not_expiring_soon[mbx3]", "test_certificates_not_expiring_critically[mbx3]"},
        "CN=mail.lab.contoso.test",
        1,
    ),
    (
        "certificate_expiring (warning)",
        [{"kind": "certificate_expiring", "server": "mbx1", "days": 20}],
        [],
        {"test_certificates_not_expiring_soon[mbx1]"},
        "bound to IIS (Services), SMTP (Services), IIS Default Web Site (0.0.0.0:443), expires in 20.0 day(s)",
        0,
    ),
    (
        "os_version_mismatch",
        [{"kind": "os_version_mismatch", "server": "mbx2"}],
        [],
        {"test_windows_version_same_across_dag[mbx2]"},
        "mbx2 runs Windows Server 2019 (build 17763), unlike the DAG",
        1,
    ),
    (
        "tls_setting_mismatch",
        [{"kind": "tls_setting_mismatch", "server": "mbx4"}],
        [],
        {"test_tls_settings_same_across_dag[mbx4]"},
        "Protocols\\TLS 1.0\\Server\\Enabled = 0x1 (others: 0x0 on mbx1",
        1,
    ),
    (
        "clock_skew",
        [{"kind": "clock_skew", "server": "mbx3", "seconds": 300}],
        [],
        {"test_clock_agrees_across_dag[mbx3]"},
        "mbx3's clock is 300",
        1,
    ),
    # ---- preflight (the gate for mbx1) ------------------------------------------------------------
    (
        "no_redundant_copy",
        [
            {"kind": "copy_suspended", "database": "DB01", "server": "mbx2"},
            {"kind": "copy_failed", "database": "DB01", "server": "mbx3"},
        ],
        PRE,
        {"test_active_database_has_a_redundant_copy[DB01\\mbx1]"} | repl("mbx1", "DatabaseRedundancy"),
        "no other copy can take over (DB01\\mbx2: status Suspended, activation suspended; DB01\\mbx3: status Failed)",
        1,
    ),
    (
        "only_a_lagged_copy_left",
        [{"kind": "copy_failed", "database": "DB04", "server": "mbx3"}],
        ["--phase", "preflight", "--server", "mbx4"],
        {"test_active_database_has_a_redundant_copy[DB04\\mbx4]"} | repl("mbx4", "DatabaseRedundancy"),
        "DB04\\mbx2: lagged copy",
        1,
    ),
    # Get-ClusterNode is DAG-wide, asked of one member whose cluster service answers (issue 14): mbx3's own
    # "Cluster service ... is not running" no longer blinds the checks that read the other members' state
    # (redundancy, sites, maintenance), which pass on the data; the quorum and witness checks catch it.
    (
        "quorum_lost",
        [{"kind": "cluster_node_down", "server": "mbx3"}, {"kind": "witness_unavailable"}],
        PRE,
        {"test_quorum_survives_pausing_this_node[mbx1]", "test_witness_share_in_use[mbx1]"}
        | repl("mbx1", "DagMembersUp", "FileShareQuorum"),
        "pausing mbx1 leaves 2 of 5 votes",
        1,
    ),
    (
        "another_member_in_maintenance",
        [{"kind": "in_maintenance", "server": "mbx3"}],
        PRE,
        {"test_no_other_member_in_maintenance[mbx1]"},
        "mbx3 (ServerWideOffline Inactive, cluster node Paused",
        1,
    ),
    (
        "target_not_accepting_mail",
        [{"kind": "component_inactive", "server": "mbx2", "component": "HubTransport", "requester": "HealthApi"}],
        [*PRE, "--target", "mbx2"],
        {"test_target_transport_is_active[mbx1]"},
        "target mbx2 has HubTransport Inactive, ServerWideOffline Active (HubTransport held Inactive by requester HealthApi)",
        1,
    ),
    (
        "site_left_without_scp",
        [{"kind": "scp_missing_site", "server": "mbx2", "site": "Site-A"}],
        PRE,
        {"test_sites_stay_covered[mbx1]"},
        "-AutoDiscoverSiteScope Site-A",
        1,
    ),
    (
        "pending_reboot_cbs",
        [{"kind": "pending_reboot", "server": "mbx1", "value": "cbs"}],
        PRE,
        {"test_no_reboot_is_pending[mbx1]"},
        "Component Based Servicing\\RebootPending",
        1,
    ),
    (
        "pending_reboot_file_rename",
        [{"kind": "pending_reboot", "server": "mbx1", "value": "file_rename"}],
        PRE,
        {"test_no_reboot_is_pending[mbx1]"},
        "PendingFileRenameOperations",
        1,
    ),
    (
        "pending_reboot_exchange_setup",
        [{"kind": "pending_reboot", "server": "mbx1", "value": "exchange_setup"}],
        PRE,
        {"test_no_reboot_is_pending[mbx1]"},
        "UpdateExeVolatile",
        1,
    ),
    (
        "low_disk",
        [{"kind": "low_disk", "server": "mbx1", "volume": "E:", "value": "3"}],
        PRE,
        {"test_volume_has_free_space[mbx1:E:]"},
        "mbx1:E: has 3.0 GB free",
        1,
    ),
    (
        "dotnet_outdated",
        [{"kind": "dotnet_outdated", "server": "mbx1", "value": "461814"}],
        PRE,
        {"test_dotnet_meets_build_requirement[mbx1]"},
        "needs 4.8.1 (release 533320)",
        1,
    ),
    (
        "windows_service_stopped",
        [{"kind": "service_stopped", "server": "mbx1", "service": "MSExchangeRepl"}],
        PRE,
        {"test_windows_service_running[mbx1:MSExchangeRepl]", "test_required_services_running[mbx1:Mailbox Server Role]"}
        | repl("mbx1", "ReplayService", "ActiveManager", "TasksRpcListener", "TcpListener", "ServerLocatorService"),
        "service MSExchangeRepl on mbx1 is STOPPED",
        1,
    ),
    # ---- maintenance (mbx1 in maintenance) ---------------------------------------------------------
    ("node_not_paused", [{**MM, "value": "pause"}], MAINT, {"test_node_paused_and_not_pam[mbx1]"}, "node Up, PAM on mbx1", 1),
    (
        "activation_not_blocked",
        [{**MM, "value": "block"}],
        MAINT,
        {"test_activation_blocked_in_maintenance[mbx1]", "test_no_copy_mounted_in_maintenance[DB01\\mbx1]"},
        "DB01 is still mounted on mbx1",
        1,
    ),
    (
        "server_wide_offline_active",
        [{**MM, "value": "offline"}],
        MAINT,
        {f"test_component_is_offline_in_maintenance[mbx1:{c}]" for c in OFFLINE},
        "HubTransport is Draining on mbx1 in maintenance, held Draining by requester Maintenance",
        1,
    ),
    (
        "queue_not_drained",
        [MM, {"kind": "stuck_queue", "server": "mbx1", "count": 7}],
        MAINT,
        {"test_local_queues_are_drained[mbx1]"},
        "MBX1\\1001 (next hop Site-B) holds 7",
        1,
    ),
    (
        "shadow_copies_held",
        [MM, {"kind": "shadow_queue", "server": "mbx1", "value": "mbx3", "count": 4}],
        MAINT,
        {"test_no_shadow_copies_for_this_server[mbx1]"},
        "held on mbx3",
        1,
    ),
    # ---- postflight (mbx1 back) -------------------------------------------------------------------
    # Without --server no transition is due: the post-maintenance checks judge every server as it is.
    (
        "left_in_maintenance",
        [MM],
        ["--phase", "postflight"],
        {"test_activation_restored[mbx1]", "test_cluster_node_up[mbx1]", "test_database_on_preferred_server[DB01]"}
        | {f"test_component_is_active[mbx1:{c}]" for c in OFFLINE}
        | {f"test_protocol_answers_health_page[mbx1:{p}]" for p in PROTOCOLS},
        "because ServerWideOffline is Inactive (requester Maintenance)",
        1,
    ),
]
HEALTHY = [("health", []), ("preflight", PRE), ("maintenance", MAINT), ("postflight", POST)]


@pytest.mark.parametrize("phase,args", HEALTHY, ids=[h[0] for h in HEALTHY])
def test_healthy_state_passes_every_check_of_the_phase(run_checks, phase, args) -> None:
    faults = [MM] if phase == "maintenance" else []
    result = run_checks(lab_data(faults), *args)
    assert result.exit_code == 0, result.messages
    assert len(result.outcomes) > 20
    assert not result.failed()


@pytest.mark.parametrize("faults,args,expected,phrase,exit_code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fault_turns_exactly_its_checks_red(run_checks, faults, args, expected, phrase, exit_code) -> None:
    result = run_checks(lab_data(faults), *args)
    assert result.short_failed() == expected
    messages = " | ".join(result.messages.values())
    assert phrase in messages
    assert "expected" in messages or "could not collect" in messages
    assert result.exit_code == exit_code


def test_warnings_fail_the_gate_with_strict_warnings(run_checks) -> None:
    result = run_checks(lab_data([{"kind": "poison_messages", "server": "mbx1"}]), "--strict-warnings")
    assert result.exit_code == 1 and result.short_failed() == {"test_poison_queue_is_empty[mbx1]"}


def test_dropped_connection_fails_only_that_servers_checks(run_checks) -> None:
    """The server is unreachable for the run (one attempt), the others are judged; a blind run exits 8."""
    from dagcheck.safety import EXIT_BLIND

    result = run_checks(lab_data([{"kind": "dropped_connection", "server": "mbx3"}]))
    failed = result.short_failed()
    assert failed and all("mbx3" in name for name in failed), failed
    ran = {n.replace("\\\\", "\\") for n in result.outcomes}
    assert any("[DB01\\mbx1]" in n for n in ran)
    assert all("connection dropped" in m or "connection" in m for m in result.messages.values())
    assert result.exit_code == EXIT_BLIND


def test_a_server_refusing_the_account_fails_alone_once_it_is_proven_elsewhere(run_checks, monkeypatch) -> None:
    """mbx2 rejects the lab's one account: the refusal is proven on a second server before the account is
    withdrawn (issue 24), that server accepts it, so only mbx2 is blind, named as refusing a credential that works
    elsewhere; the lab counts one failed logon (at mbx2); every other server is checked; exit 8."""
    from dagcheck.lab import embedded
    from dagcheck.safety import EXIT_BLIND

    counts: list[dict[str, int]] = []
    stop = embedded.EmbeddedLab.stop
    monkeypatch.setattr(embedded.EmbeddedLab, "stop", lambda self: (counts.append(dict(self.wire.failed_logons)), stop(self)))
    result = run_checks(lab_data([{"kind": "auth_rejected", "server": "mbx2"}]))
    assert counts == [{"mbx2": 1}]
    assert result.exit_code == EXIT_BLIND
    assert result.messages and all("refused a credential that works elsewhere" in m for m in result.messages.values())
    assert result.short_failed() and all("mbx2" in n for n in result.short_failed())
    # What other members report about mbx2 (the DAG's and the cluster's view, read on them) still passes.
    passed_for_mbx2 = {n.split("::")[1].split("[")[0] for n, o in result.outcomes.items() if o == "passed" and "[mbx2" in n}
    assert passed_for_mbx2 <= {"test_cluster_node_up", "test_all_members_operational", "test_witness_share_in_use"}
    assert any(o == "passed" and "[mbx1" in n for n, o in result.outcomes.items())


def test_missing_cmdlet_fails_the_checks_that_read_it(run_checks) -> None:
    result = run_checks(lab_data([{"kind": "cmdlet_missing", "server": "mbx4", "cmdlet": "Test-ReplicationHealth"}]))
    assert result.short_failed() == {"test_replication_check_passes[mbx4]"}
    assert "'Test-ReplicationHealth' is not recognized as the name of a cmdlet" in " ".join(result.messages.values())


def test_slow_cmdlet_still_answers(run_checks) -> None:
    result = run_checks(
        lab_data([{"kind": "slow_cmdlet", "server": "mbx1", "cmdlet": "Test-ServiceHealth", "seconds": 1.5}]), "-k", "services"
    )
    assert result.exit_code == 0 and result.outcomes
