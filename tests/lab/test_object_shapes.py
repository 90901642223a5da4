"""Every parser reads both shapes of an Exchange object (docs/remote-session-shapes.md): the live one
(the fixture files, lab object_shape live) and the remote-session one a /PowerShell client receives
(string forms; the lab's default). A value in neither form is a ParseError naming cmdlet, property
and value, which fails that server's checks that read it and nothing else."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from psrpcore.types import PSNoteProperty, PSObject, serialize

from dagcheck import clixml
from dagcheck.collect import Collector, SourceFailed
from dagcheck.errors import ParseError
from dagcheck.inventory import load_inventory
from dagcheck.lab import cmdlets
from dagcheck.lab import psobjects as ps
from dagcheck.lab.build import build_organization
from dagcheck.lab.inprocess import InProcessTransport
from dagcheck.lab.state import Organization
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.components import parse_component_state
from dagcheck.sources.exchange_servers import parse_exchange_server
from dagcheck.sources.mailbox_databases import parse_mailbox_database
from dagcheck.sources.registry import SOURCES
from dagcheck.sources.service_health import parse_service_health
from dagcheck.sources.values import ad_name, byte_size, server_version, timespan_seconds
from tests import shared_fixtures
from tests.conftest import LAB_YML, lab_data

FIXTURES = shared_fixtures.css_exchange("E19")
SERVER = "mbx1"


def _org(shape: str) -> Organization:
    inventory = load_inventory(LAB_YML)
    assert inventory.lab is not None
    return build_organization(dataclasses.replace(inventory, lab={**inventory.lab, "object_shape": shape}))


def _client(value: Any) -> Any:
    """What the client's deserializer makes of a lab object (the same path as the wire)."""
    return clixml.from_element_text(ET.tostring(serialize(value, clixml.CIPHER), encoding="unicode"))


def _raw(org: Organization, source: str) -> list[Any]:
    """The lab's server-side objects for one source of mbx1 (before serialization)."""
    out = []
    dag_wide = SOURCES[source].dag_wide  # asked by the DAG's name (dagcheck.sources.base.Source.dag_wide)
    for command in SOURCES[source].commands(org.server(SERVER).dag if dag_wide else SERVER):
        pipeline = [(command.cmdlet, command.params())]
        if command.member:
            pipeline.append(("ForEach-Object", {"MemberName": command.member}))
        out.extend(cmdlets.run_pipeline(org, SOURCES[source].endpoint.value, SERVER, pipeline))
    return out


def _parsed(shape: str, source: str) -> list[Any]:
    return [SOURCES[source].parse(_client(o), SERVER) for o in _raw(_org(shape), source)]


# ---- both shapes give the same model, for every source the checks read ----------------------------


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_parser_reads_the_live_and_the_remote_shape_alike(source: str) -> None:
    live, remote = _parsed("live", source), _parsed("remote", source)
    assert live, f"the lab returned nothing for {source}"
    assert live == remote


def test_the_remote_shape_carries_string_forms_and_the_live_shape_bags() -> None:
    remote = _client(_raw(_org("remote"), "exchange_server")[0])
    live = _client(_raw(_org("live"), "exchange_server")[0])
    assert isinstance(remote.AdminDisplayVersion, str) and remote.AdminDisplayVersion.startswith("Version 15.")
    assert isinstance(remote.Site, str) and remote.Site == "contoso.test/Configuration/Sites/Site-A"
    assert remote.ServerRole == "Mailbox" and isinstance(remote.ServerRole, str)
    assert live.AdminDisplayVersion.Major == 15 and live.Site.Name == "Site-A"
    db = _client(_raw(_org("remote"), "databases")[0])
    assert all(isinstance(e, str) and e.startswith("[MBX") for e in db.ActivationPreference)
    assert db.DatabaseSize == "152.1 MB (159,449,088 bytes)"
    assert parse_mailbox_database(db).size_bytes == 159449088
    dag = _client(_raw(_org("remote"), "dag_status")[0])
    assert list(dag.Servers) == ["MBX1", "MBX2", "MBX3", "MBX4"] and dag.PrimaryActiveManager == "MBX1"


def _type_names(value: Any) -> list[str]:
    """The TN entries of an object and of everything inside it (primitives carry no TN on the wire)."""
    primitive = isinstance(value, (str, int, float, bool)) or type(value).__module__.endswith("_primitive")
    if primitive or not hasattr(value, "PSObject"):
        return []
    # psrpcore rebuilds some collections (System.Int32[]) as its own list type: only bags are asserted.
    names = [] if isinstance(value, list) else list(value.PSObject.type_names or [])
    meta = getattr(value, "PSObject", None)
    for p in (*(meta.adapted_properties if meta else ()), *(meta.extended_properties if meta else ())):
        names += _type_names(p.get_value(value))
    if isinstance(value, list):
        for v in value:
            names += _type_names(v)
    return names


@pytest.mark.parametrize("shape", ["remote", "live"])
def test_every_type_name_a_client_sees_is_deserialized(shape: str) -> None:
    # The wire carries the real type names; the receiving deserializer prefixes each TN entry.
    for source in ("exchange_server", "databases", "components", "copies", "dag_status", "queues"):
        for raw in _raw(_org(shape), source):
            names = _type_names(_client(raw))
            assert names and all(n.startswith("Deserialized.") for n in names), (source, names[:3])


# ---- hand-made remote-session values, independent of the lab's converter ---------------------------


def _bag(props: dict[str, Any]) -> PSObject:
    value = PSObject()
    for k, v in props.items():
        value.PSObject.adapted_properties.append(PSNoteProperty(k, v))
    return value


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Version 15.2 (Build 1544.4)", (15, 2, 1544, 4)),
        ("Version 15.1 (Build 2507.6)", (15, 1, 2507, 6)),
        ("Version 15.2 (Build 2562.17)", (15, 2, 2562, 17)),
    ],
)
def test_server_version_string_form(text: str, expected: tuple[int, ...]) -> None:
    obj = _client(
        ps.obj(
            ["Microsoft.Exchange.Data.Directory.Management.ExchangeServer", "System.Object"],
            {
                "Name": "EX01",
                "Fqdn": "ex01.contoso.com",
                "AdminDisplayVersion": text,
                "Site": "contoso.com/Configuration/Sites/Default-First-Site-Name",
            },
        )
    )
    server = parse_exchange_server(obj)
    assert server.admin_display_version == expected and server.site == "Default-First-Site-Name"


@pytest.mark.parametrize(
    "value,expected",
    [
        ("EX01", "EX01"),
        ("contoso.com/Configuration/Sites/Site-B", "Site-B"),
        ("CN=EX02,CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),DC=contoso,DC=com", "EX02"),
    ],
)
def test_ad_object_id_string_forms(value: str, expected: str) -> None:
    assert ad_name(value, "Get-X", "Server") == expected


def test_ad_object_id_bag_form() -> None:
    assert ad_name(_bag({"Name": "EX03", "DistinguishedName": "CN=EX03"}), "Get-X", "Server") == "EX03"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1.5 GB (1,610,612,736 bytes)", 1610612736),
        ("152.1 MB (159,449,088 bytes)", 159449088),
        ("0 B (0 bytes)", 0),
        ("(512 bytes)", 512),
    ],
)
def test_byte_quantified_size_forms(text: str, expected: int) -> None:
    assert byte_size(_bag({"DatabaseSize": text}), "Get-MailboxDatabase", "DatabaseSize") == expected


@pytest.mark.parametrize("n", [0, 512, 1023 * 1024, 159449088, 1610612736, 2146435072, 53150121984, 5 * 1024**4 + 17])
def test_lab_byte_size_text_reads_back_exactly(n: int) -> None:
    text = ps.byte_size_text(n)
    assert byte_size(_bag({"S": text}), "Get-MailboxDatabase", "S") == n, text


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("7.00:00:00", 7 * 86400),
        ("00:00:00", 0),
        ("1.02:03:04", 93784),
        ("14:00:00", 50400),
        ("00:00:01.5000000", 1.5),
    ],
)
def test_enhanced_time_span_forms(text: str, seconds: float) -> None:
    assert timespan_seconds(text, "Get-MailboxDatabase", "ReplayLagTimes") == seconds


def test_requester_details_string_form() -> None:
    obj = _client(
        ps.obj(
            ["Microsoft.Exchange.Data.Directory.Management.ServerComponentStatePresentationObject", "System.Object"],
            {
                "ServerFqdn": "ex01.contoso.com",
                "Component": "HubTransport",
                "State": "Inactive",
                "LocalStates": ["Requestor:Maintenance; State:Inactive; Timestamp:9/28/2021 5:32:01 PM"],
                "RemoteStates": [],
            },
        )
    )
    state = parse_component_state(obj)
    assert (state.server, state.state, state.requesters("Inactive")) == ("ex01", "Inactive", ("Maintenance",))
    assert state.local[0].timestamp is not None and state.local[0].timestamp.year == 2021


def test_boolean_string_form_is_not_truthy() -> None:
    # bool("False") is True: the old parser would have read a stopped role as healthy.
    obj = _client(
        ps.obj(
            ["Microsoft.Exchange.Monitoring.ExchangeServicesStatus", "System.Object"],
            {"Role": "Mailbox Server Role", "RequiredServicesRunning": "False", "ServicesNotRunning": ["MSExchangeIS"]},
        )
    )
    assert parse_service_health(obj, "ex01").required_services_running is False


# ---- garbage: ParseError naming cmdlet, property and value ----------------------------------------

GARBAGE = [
    ("components", "State", "Sideways!", "Get-ServerComponentState"),
    ("components", "Component", None, "Get-ServerComponentState"),
    ("copies", "CopyQueueLength", "lots", "Get-MailboxDatabaseCopyStatus"),
    ("copies", "Status", "Healthy-ish?", "Get-MailboxDatabaseCopyStatus"),
    ("copies", "ReplayLagStatus", "sometimes", "Get-MailboxDatabaseCopyStatus"),
    ("queues", "MessageCount", "many", "Get-Queue"),
    ("replication", "Result", "Réussi", "Test-ReplicationHealth"),
    ("services", "RequiredServicesRunning", "yes", "Test-ServiceHealth"),
    ("exchange_server", "AdminDisplayVersion", "15.2 CU14", "Get-ExchangeServer"),
    ("exchange_server", "AdminDisplayVersion", None, "Get-ExchangeServer"),
    ("exchange_server", "Site", "", "Get-ExchangeServer"),
    ("mailbox_server", "DatabaseCopyAutoActivationPolicy", "Not allowed!", "Get-MailboxServer"),
    ("mailbox_server", "DatabaseCopyActivationDisabledAndMoveNow", "nope", "Get-MailboxServer"),
    ("dag_status", "WitnessShareInUse", "?!", "Get-DatabaseAvailabilityGroup"),
    ("dag_status", "Name", "", "Get-DatabaseAvailabilityGroup"),
    ("cluster_nodes", "State", "", "Get-ClusterNode"),
    ("databases", "ActivationPreference", ["MBX1 first"], "Get-MailboxDatabase"),
    ("databases", "DatabaseSize", "big", "Get-MailboxDatabase"),
    ("databases", "Mounted", "perhaps", "Get-MailboxDatabase"),
    ("mapi", "Result", "maybe", "Test-MAPIConnectivity"),
    ("client_access", "Name", None, "Get-ClientAccessService"),
    ("vdirs", "ExtendedProtectionTokenChecking", "Sometimes", "Get-*VirtualDirectory"),
    ("exsetup", "FileBuildPart", "x", "Get-Command ExSetup.exe"),
]


@pytest.mark.parametrize("shape", ["remote", "live"])
@pytest.mark.parametrize("source,prop,value,cmdlet", GARBAGE, ids=[f"{g[0]}-{g[1]}-{g[2]!r}" for g in GARBAGE])
def test_garbage_is_a_parse_error_naming_cmdlet_property_and_value(shape, source, prop, value, cmdlet) -> None:
    raw = _raw(_org(shape), source)[0]
    bad = ps.with_property(
        raw,
        prop,
        ps.typed_list(value, ["System.Object[]", "System.Array", "System.Object"]) if isinstance(value, list) else value,
    )
    with pytest.raises(ParseError) as caught:
        SOURCES[source].parse(_client(bad), SERVER)
    message = str(caught.value)
    assert message.startswith(f"{cmdlet}: cannot read ") and prop in message, message
    shown = value[0] if isinstance(value, list) else value
    assert (repr(shown) in message) if shown else ("nothing" in message or "''" in message), message
    assert "expected" in message


# ---- the real files ---------------------------------------------------------------------------------

REAL = [
    ("GetServerComponentState.xml", "components"),
    ("GetMailboxServer.xml", "mailbox_server"),
    ("GetExchangeServer.xml", "exchange_server"),
    ("TestServiceHealth.xml", "services"),
    ("GetOwaVirtualDirectory.xml", "vdirs"),
    ("GetWebServicesVirtualDirectory.xml", "vdirs"),
    ("ExSetup.xml", "exsetup"),
]


@shared_fixtures.needs(FIXTURES)
@pytest.mark.parametrize("name,source", REAL)
def test_the_real_files_parse_without_parse_error(name: str, source: str) -> None:
    objects = clixml.from_file(FIXTURES / name)
    assert objects and all(SOURCES[source].parse(o, "solo-e19a") is not None for o in objects)


@shared_fixtures.needs(FIXTURES)
def test_the_real_admin_display_version_object_and_its_string_agree() -> None:
    version = clixml.from_file(FIXTURES / "AdminDisplayVersion-E19CU11.xml")[0]
    as_bag = server_version(_bag({"AdminDisplayVersion": version}), "Get-ExchangeServer")
    as_text = server_version(_bag({"AdminDisplayVersion": str(version)}), "Get-ExchangeServer")
    assert as_bag == as_text and as_bag[:2] == (15, 2)


# ---- a ParseError stays local: one source of one server --------------------------------------------


def test_a_parse_error_fails_only_that_servers_source() -> None:
    org = _org("remote")
    org.runtime_faults.append(_fault(server="mbx2"))
    collector = Collector(InProcessTransport(org))
    with pytest.raises(SourceFailed) as caught:
        collector.snapshot("mbx2", "health").get("exchange_server")
    assert str(caught.value) == (
        "mbx2: Get-ExchangeServer: cannot read AdminDisplayVersion = '15.2 CU14': expected a "
        "ServerVersion (Major, Minor, Build, Revision) or 'Version 15.2 (Build 1544.4)'"
    )
    assert collector.snapshot("mbx1", "health").get("exchange_server")[0].admin_display_version[:2] == (15, 2)
    assert collector.snapshot("mbx2", "health").get("mailbox_server")  # the server's other sources still read


def _fault(**params: Any) -> Any:
    from dagcheck.lab.settings import Fault

    return Fault(
        "malformed_value", {"cmdlet": "Get-ExchangeServer", "property": "AdminDisplayVersion", "value": "15.2 CU14", **params}
    )


def test_a_parse_error_fails_that_servers_checks_with_the_message_and_the_run_goes_on(run_checks) -> None:
    fault = {
        "kind": "malformed_value",
        "server": "mbx2",
        "cmdlet": "Get-ExchangeServer",
        "property": "AdminDisplayVersion",
        "value": "15.2 CU14",
    }
    result = run_checks(lab_data([fault]))
    failed = result.short_failed()
    assert failed and result.exit_code == 1
    assert len(result.outcomes) - len(failed) > 500  # every other check ran and passed
    for nodeid, message in result.messages.items():
        assert "could not collect: mbx2: Get-ExchangeServer: cannot read AdminDisplayVersion = '15.2 CU14'" in message, nodeid
    assert all("mbx2" in name or "DAG1" in name for name in failed), failed
    assert "test_admin_display_version_matches_exsetup[mbx2]" in failed


# ---- the whole catalogue is green against either shape ----------------------------------------------


@pytest.mark.parametrize("shape", ["live", "remote"])
def test_the_catalogue_passes_against_either_shape(run_checks, shape: str) -> None:
    data = lab_data()
    data["lab"]["object_shape"] = shape
    result = run_checks(data)
    assert result.exit_code == 0, result.messages
    assert len(result.outcomes) > 500 and not result.failed()


def test_object_shape_is_validated_by_the_schema(tmp_path) -> None:
    import yaml

    from dagcheck.errors import InventoryError

    data = lab_data()
    data["lab"]["object_shape"] = "rehydrated"
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert "object_shape" in str(caught.value)


def test_command_endpoint_types_are_what_collect_sends() -> None:
    # Guard for the helpers above: they run exactly the commands dagcheck.collect sends.
    assert SOURCES["exchange_server"].commands(SERVER) == [Command.of("Get-ExchangeServer", Identity=SERVER)]
    assert SOURCES["cluster_nodes"].endpoint is Endpoint.WINDOWS
