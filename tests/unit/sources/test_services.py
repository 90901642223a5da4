"""Get-Service's status and start type are read in each form they can arrive in; DAG-SVC-002 judges them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from psrpcore.types import serialize

from dagcheck import clixml
from dagcheck.catalogue import CheckFailure
from dagcheck.errors import ParseError
from dagcheck.lab import psobjects as ps
from dagcheck.sources import services
from dagcheck.sources.services import ServiceStart

START = "System.ServiceProcess.ServiceStartMode"
STATUS = "System.ServiceProcess.ServiceControllerStatus"


def _roundtrip(value):
    return clixml.from_element_text(ET.tostring(serialize(value, clixml.CIPHER), encoding="unicode"))


def _service(status, start_type, name="MSExchangeIS"):
    return _roundtrip(
        ps.obj(
            ["System.ServiceProcess.ServiceController", "System.Object"],
            {"Name": name, "Status": status, "StartType": start_type},
        )
    )


@pytest.mark.parametrize(
    "status,start_type",
    [(ps.enum(STATUS, "Running"), ps.enum(START, "Disabled")), ("Running", "Disabled"), (4, 4)],
    ids=["enum", "name", "integer"],
)
def test_status_and_start_type_in_each_form(status, start_type) -> None:
    service = services.parse(_service(status, start_type), "MBX1.contoso.test")
    assert (service.server, service.name, service.status, service.start_type) == ("mbx1", "MSExchangeIS", "Running", "Disabled")
    assert service.is_exchange


def test_start_type_in_no_known_form_is_an_error() -> None:
    with pytest.raises(ParseError, match="StartType"):
        services.parse(_service("Running", "sometimes"), "mbx1")


def _judge(name: str, start_type: str) -> None:
    from checks.test_service_start_type import test_exchange_service_not_disabled

    test_exchange_service_not_disabled(ServiceStart("mbx1", name, "Running", start_type))


def test_required_service_must_be_automatic_and_others_only_not_disabled() -> None:
    _judge("MSExchangeIS", "Automatic")
    _judge("MSExchangeImap4", "Manual")  # installed Manual: fine
    with pytest.raises(CheckFailure, match="MSExchangeIS on mbx1 starts Manual"):
        _judge("MSExchangeIS", "Manual")
    with pytest.raises(CheckFailure) as failure:
        _judge("MSExchangeImap4", "Disabled")
    assert "-StartupType Manual" in str(failure.value.remediation)


def test_in_the_lab_a_disabled_service_does_not_come_back_after_a_restart() -> None:
    from dagcheck.inventory import load_inventory
    from dagcheck.lab import faults
    from dagcheck.lab.settings import Fault
    from dagcheck.lab.state import Organization
    from tests.conftest import ROOT

    org = Organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    faults.apply_fault(org, Fault("service_disabled", {"server": "mbx1", "service": "MSExchangeTransport"}))
    server = org.server("mbx1")
    assert server.services["MSExchangeTransport"] == "Running"  # disabled, still running until the restart
    order = org.schedule_restart(server, down_seconds=0, step=0)
    org.start_due_services()
    assert "MSExchangeTransport" not in order and server.services["MSExchangeTransport"] == "Stopped"
    assert server.services["MSExchangeIS"] == "Running"


def test_a_lab_state_saved_before_these_fields_existed_loads_with_their_defaults() -> None:
    from dagcheck.inventory import load_inventory
    from dagcheck.lab import persist
    from dagcheck.lab.state import Organization
    from tests.conftest import ROOT

    data = persist.dump(Organization(load_inventory(ROOT / "inventory" / "lab.yml")))
    for pair in data["org"]["servers"]["$map"]:
        for field in ("start_types", "stopped_iis", "unhealthy_monitors"):
            del pair[1]["f"][field]
    server = persist.restore(data).server("mbx1")
    assert server.start_types == {} and server.stopped_iis == set() and server.unhealthy_monitors == {}


def test_in_the_lab_restarting_a_disabled_service_fails_and_leaves_it_stopped() -> None:
    from dagcheck.inventory import load_inventory
    from dagcheck.lab import cmdlets, faults
    from dagcheck.lab.errors import LabCmdletError
    from dagcheck.lab.settings import Fault
    from dagcheck.lab.state import Organization
    from tests.conftest import ROOT

    org = Organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    faults.apply_fault(org, Fault("service_disabled", {"server": "mbx2", "service": "MSExchangeTransport"}))
    with pytest.raises(LabCmdletError, match="Cannot start service MSExchangeTransport"):
        cmdlets.base.invoke(org, "windows", "mbx2", "Restart-Service", {"Name": "MSExchangeTransport"})
    assert org.server("mbx2").services["MSExchangeTransport"] == "Stopped"
