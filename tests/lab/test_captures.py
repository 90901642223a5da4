"""Real Exchange 2019 CLIXML (../shared/fixtures/css-exchange) parses into the sources' dataclasses, and the lab's
objects have the same structure for the properties the checks read."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest
from psrpcore.types import serialize

from dagcheck import clixml
from dagcheck.inventory import load_inventory
from dagcheck.lab import cmdlets
from dagcheck.lab.build import build_organization
from dagcheck.sources.components import parse_component_state
from dagcheck.sources.exchange_servers import parse_exchange_server
from dagcheck.sources.exsetup import parse_file_version
from dagcheck.sources.mailbox_servers import parse_mailbox_server
from dagcheck.sources.service_health import parse_service_health
from dagcheck.sources.virtual_directories import parse_virtual_directory
from tests import shared_fixtures
from tests.conftest import ROOT

FIXTURES = shared_fixtures.css_exchange("E19")
pytestmark = shared_fixtures.needs(FIXTURES)


def _fixture(name: str) -> list:
    return clixml.from_file(FIXTURES / name)


def test_every_fixture_file_deserializes() -> None:
    files = sorted(FIXTURES.glob("*.xml"))
    assert len(files) >= 8
    for f in files:
        objects = clixml.from_file(f)
        assert objects, f.name
        assert all(o is not None for o in objects)


def test_component_states_fixture() -> None:
    states = [parse_component_state(o) for o in _fixture("GetServerComponentState.xml")]
    assert len(states) == 34 and {s.server for s in states} == {"solo-e19a"}
    by = {s.component: s for s in states}
    assert by["ForwardSyncDaemon"].state == "Inactive" and by["HubTransport"].state == "Active"
    assert by["ServerWideOffline"].local[0].requester == "Functional"
    assert by["ServerWideOffline"].local[0].state == "Active"


def test_mailbox_server_exchange_server_services_exsetup_fixtures() -> None:
    mbx = parse_mailbox_server(_fixture("GetMailboxServer.xml")[0])
    assert (mbx.name, mbx.activation_policy, mbx.move_now) == ("solo-e19a", "Unrestricted", False)
    ex = parse_exchange_server(_fixture("GetExchangeServer.xml")[0])
    assert ex.admin_display_version == (15, 2, 986, 5) and ex.site == "Default-First-Site-Name"
    roles = [parse_service_health(o, "solo-e19a") for o in _fixture("TestServiceHealth.xml")]
    assert [r.role for r in roles] == ["Mailbox Server Role", "Client Access Server Role", "Hub Transport Server Role"]
    assert all(r.required_services_running and not r.services_not_running for r in roles)
    assert parse_file_version(_fixture("ExSetup.xml")[0]).version == (15, 2, 986, 5)
    ews = parse_virtual_directory(_fixture("GetWebServicesVirtualDirectory.xml")[0], "solo-e19a")
    assert (ews.name, ews.token_checking) == ("EWS (Default Web Site)", "None")


def _lab_objects(cmdlet: str, endpoint: str = "exchange", shape: str = "live", **params) -> list:
    """The lab's answer as a client deserializes it; the fixtures are the live shape, so by default
    the lab is asked for that one (tests/lab/test_object_shapes.py compares the remote-session shape)."""
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    assert inventory.lab is not None
    org = build_organization(dataclasses.replace(inventory, lab={**inventory.lab, "object_shape": shape}))
    pipeline = [(cmdlet, params)]
    if cmdlet == "Get-Command":
        pipeline.append(("ForEach-Object", {"MemberName": "FileVersionInfo"}))
    raw = cmdlets.run_pipeline(org, endpoint, "mbx1", pipeline)
    return [clixml.from_element_text(ET.tostring(serialize(o, clixml.CIPHER), encoding="unicode")) for o in raw]


def _shape(obj) -> tuple[list[str], dict[str, list[str]]]:
    types = [t for t in obj.PSTypeNames]
    props = {}
    for p in obj.PSObject.adapted_properties:
        v = p.get_value(obj)
        props[p.name] = list(getattr(v, "PSTypeNames", [type(v).__name__]))[:1]
    return types, props


@pytest.mark.parametrize(
    "fixture,cmdlet,params,checked",
    [
        (
            "GetServerComponentState.xml",
            "Get-ServerComponentState",
            {"Identity": "mbx1"},
            ["ServerFqdn", "Component", "State", "ServerWideOfflineIsOffline", "RemoteStates", "LocalStates", "Identity"],
        ),
        (
            "GetMailboxServer.xml",
            "Get-MailboxServer",
            {"Identity": "mbx1"},
            [
                "Name",
                "DatabaseCopyAutoActivationPolicy",
                "DatabaseCopyActivationDisabledAndMoveNow",
                "AdminDisplayVersion",
                "Identity",
            ],
        ),
        (
            "GetExchangeServer.xml",
            "Get-ExchangeServer",
            {"Identity": "mbx1"},
            ["Name", "Fqdn", "AdminDisplayVersion", "Site", "ServerRole", "Edition"],
        ),
        (
            "TestServiceHealth.xml",
            "Test-ServiceHealth",
            {"Server": "mbx1"},
            ["Role", "RequiredServicesRunning", "ServicesRunning", "ServicesNotRunning"],
        ),
        (
            "GetWebServicesVirtualDirectory.xml",
            "Get-WebServicesVirtualDirectory",
            {"Server": "mbx1"},
            [
                "Name",
                "MetabasePath",
                "ExtendedProtectionTokenChecking",
                "ExtendedProtectionFlags",
                "ExtendedProtectionSPNList",
                "Server",
            ],
        ),
        (
            "GetOwaVirtualDirectory.xml",
            "Get-OwaVirtualDirectory",
            {"Server": "mbx1"},
            ["Name", "ExtendedProtectionTokenChecking", "Server"],
        ),
        (
            "ExSetup.xml",
            "Get-Command",
            {"Name": "ExSetup.exe"},
            ["FileMajorPart", "FileMinorPart", "FileBuildPart", "FilePrivatePart", "FileVersion"],
        ),
    ],
)
def test_lab_objects_have_the_fixture_shape(fixture, cmdlet, params, checked) -> None:
    real_types, real = _shape(_fixture(fixture)[0])
    endpoint = "windows" if cmdlet == "Get-Command" else "exchange"
    lab_types, lab = _shape(_lab_objects(cmdlet, endpoint, **params)[0])
    assert lab_types[0] == real_types[0]
    for name in checked:
        assert name in lab, f"{cmdlet} lacks {name}"
        assert lab[name] == real[name], f"{cmdlet}.{name}: lab {lab[name]} vs real {real[name]}"


def test_nested_requester_state_is_a_plain_string_like_the_real_one() -> None:
    real = _fixture("GetServerComponentState.xml")[0]
    lab = _lab_objects("Get-ServerComponentState", Identity="mbx1")[0]
    for obj in (real, lab):
        entry = list(obj.LocalStates)[0]
        assert type(entry.State).__name__ == "PSString"
        assert entry.PSTypeNames[0].endswith("ServerComponentStatePresentationObject+RequesterDetails")
