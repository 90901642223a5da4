"""The shared readers (dagcheck/sources/values.py) as the source parsers use them: localized results,
enums known only as integers, both forms of a value, and the host command lines' text formats."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from psrpcore.types import serialize

from dagcheck import clixml
from dagcheck.lab import psobjects as ps
from dagcheck.sources.database_copies import parse_copy_status
from dagcheck.sources.mailbox_databases import parse_mailbox_database
from dagcheck.sources.replication_health import parse_replication_check
from dagcheck.sources.services import WindowsService, parse_sc_query
from dagcheck.sources.volumes import parse_diskfree


def _roundtrip(value):
    return clixml.from_element_text(ET.tostring(serialize(value, clixml.CIPHER), encoding="unicode"))


def test_localized_monitoring_results_are_mapped() -> None:
    for text, expected in (
        ("Passed", "Passed"),
        ("Prüfung bestanden", "Passed"),
        ("*FAILED*", "Failed"),
        ("*WARNUNG*", "Warning"),
    ):
        obj = _roundtrip(
            ps.obj(
                ["Microsoft.Exchange.Monitoring.ReplicationCheckOutcome", "System.Object"],
                {"Server": "EX01", "Check": "ClusterNetwork", "Result": text, "Error": None},
            )
        )
        assert parse_replication_check(obj).result == expected


def test_enum_known_only_as_an_integer_is_named() -> None:
    # Exchange 2019's ContentIndexState NotApplicable seen as 11 from an older management shell.
    obj = _roundtrip(
        ps.obj(
            ["Microsoft.Exchange.Management.SystemConfigurationTasks.DatabaseCopyStatusEntry", "System.Object"],
            {
                "Name": "DB01\\EX01",
                "DatabaseName": "DB01",
                "MailboxServer": "EX01",
                "Status": 6,
                "ContentIndexState": 11,
                "CopyQueueLength": 0,
                "ReplayQueueLength": 0,
                "ReplayLagStatus": "Enabled:True; PlayDownReason:None",
            },
        )
    )
    copy = parse_copy_status(obj)
    assert (copy.status, copy.content_index, copy.lagged, copy.server) == ("Healthy", "NotApplicable", True, "ex01")


def test_activation_preference_in_both_forms() -> None:
    as_strings = _roundtrip(
        ps.obj(
            ["Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase", "System.Object"],
            {
                "Name": "DB01",
                "Mounted": True,
                "MountedOnServer": "ex02.corp.example.com",
                "ActivationPreference": ["[EX01, 1]", "[EX02, 2]"],
            },
        )
    )
    db = parse_mailbox_database(as_strings, "ex01")
    assert db.activation_preference == (("ex01", 1), ("ex02", 2)) and db.preferred_server == "ex01"
    assert db.mounted_on == "ex02"


def test_sc_and_fsutil_output_formats() -> None:
    services = parse_sc_query(
        "ex01",
        "\r\nSERVICE_NAME: MSExchangeIS\r\n        TYPE               : 10  WIN32_OWN_PROCESS\r\n"
        "        STATE              : 1  STOPPED\r\n",
    )
    assert services == [WindowsService("ex01", "MSExchangeIS", "STOPPED")]
    # Windows Server 2022 prints separators and a size in brackets.
    v = parse_diskfree(
        "ex01",
        "C:",
        0,
        "Total free bytes                :  53,687,091,200 ( 50.0 GB)\r\n"
        "Total bytes                     : 107,374,182,400 (100.0 GB)\r\n",
        "",
    )
    assert (v.free_bytes, v.total_bytes, v.error) == (53687091200, 107374182400, None)


def test_sc_query_output_with_no_service_blocks_is_a_parse_error() -> None:
    from dagcheck.errors import ParseError

    with pytest.raises(ParseError, match=r"ex01: sc.exe queryex: cannot read output = '\[SC\] OpenSCManager FAILED 5"):
        parse_sc_query("ex01", "[SC] OpenSCManager FAILED 5:\r\n\r\nAccess is denied.\r\n")
    with pytest.raises(ParseError, match="cannot read output = nothing"):
        parse_sc_query("ex01", "")
