"""Get-ServerHealth's monitors are read in every form their values can arrive in; anything else is an error."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest
from psrpcore.types import serialize

from dagcheck import clixml
from dagcheck.errors import ParseError
from dagcheck.lab import psobjects as ps
from dagcheck.sources import health

ENTRY = ["Microsoft.Office.Datacenter.ActiveMonitoring.Management.Common.MonitorHealthEntry", "System.Object"]
ALERT = "Microsoft.Exchange.Data.Storage.ActiveMonitoring.MonitorAlertState"


def _roundtrip(value):
    return clixml.from_element_text(ET.tostring(serialize(value, clixml.CIPHER), encoding="unicode"))


def _entry(alert, **extra):
    return _roundtrip(
        ps.obj(
            ENTRY,
            {
                "Server": "EX01",
                "Name": "OwaSelfTestMonitor",
                "TargetResource": "",
                "HealthSetName": "OWA.Protocol",
                "AlertValue": alert,
                "LastTransitionTime": dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC),
                **extra,
            },
        )
    )


@pytest.mark.parametrize("alert", [ps.enum(ALERT, "Unhealthy"), "Unhealthy", 3], ids=["enum", "name", "integer"])
def test_alert_value_in_each_form(alert) -> None:
    monitor = health.parse(_entry(alert), "ex01.contoso.test")
    assert (monitor.server, monitor.health_set, monitor.monitor, monitor.alert_value) == (
        "ex01",
        "OWA.Protocol",
        "OwaSelfTestMonitor",
        "Unhealthy",
    )
    assert monitor.describe().startswith("health set OWA.Protocol is Unhealthy: monitor OwaSelfTestMonitor since 2026-12-01")


def test_monitor_without_its_health_set_is_an_error_naming_the_property() -> None:
    with pytest.raises(ParseError, match="HealthSetName"):
        health.parse(_entry("Healthy", HealthSetName=None), "ex01")


def test_alert_value_in_no_known_form_is_an_error() -> None:
    with pytest.raises(ParseError, match="AlertValue"):
        health.parse(_entry("not healthy at all"), "ex01")


def test_one_call_per_server_names_it() -> None:
    assert health.command("ex01").render() == "Get-ServerHealth -Identity ex01"
