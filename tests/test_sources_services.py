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
    return _roundtrip(ps.obj(["System.ServiceProcess.ServiceController", "System.Object"],
                             {"Name": name, "Status": status, "StartType": start_type}))


@pytest.mark.parametrize("status,start_type", [(ps.enum(STATUS, "Running"), ps.enum(START, "Disabled")),
                                               ("Running", "Disabled"), (4, 4)], ids=["enum", "name", "integer"])
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
