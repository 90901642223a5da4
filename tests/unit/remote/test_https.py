"""Where the health pages are asked (dagcheck.remote.https.base_uri): the server's own front end, and with
`connection.connect_address` that address, as for the PowerShell connection."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import pytest

from dagcheck.inventory import ConnectionSettings, Server, load_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.embedded import lab_connection
from dagcheck.lab.server import LabServer
from dagcheck.remote.base import Transcript
from dagcheck.remote.https import HttpsGetter, base_uri
from tests.conftest import ROOT


def _server(**connection: str) -> Server:
    return Server("ex01", "ex01.corp.example.com", "Site-A", "DAG01", ConnectionSettings(**connection))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        ({}, "https://ex01.corp.example.com"),
        ({"health_uri": "https://ex01-iis.corp.example.com:8443/"}, "https://ex01-iis.corp.example.com:8443"),
        ({"connect_address": "10.0.4.21"}, "https://10.0.4.21"),
        ({"connect_address": "ex01-mgmt.corp.example.com"}, "https://ex01-mgmt.corp.example.com"),
        (
            {"health_uri": "https://ex01.corp.example.com:8443/base", "connect_address": "10.0.4.21"},
            "https://10.0.4.21:8443/base",
        ),
        ({"connect_address": "fd00::21"}, "https://[fd00::21]"),
        ({"connect_address": "[fd00::21]"}, "https://[fd00::21]"),
    ],
)
def test_the_pages_are_asked_where_the_connection_goes(connection: dict[str, str], expected: str) -> None:
    assert base_uri(_server(**connection)) == expected


def test_a_name_that_resolves_nowhere_is_reached_through_connect_address(tmp_path) -> None:
    """The lab's names (*.lab.contoso.test) resolve nowhere, like a production FQDN a jump host cannot resolve:
    with connect_address the page answers, over TLS verified with the server's CA bundle; without it the same
    settings fail on the name."""
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    with LabServer(build_organization(inventory), https=True) as wire:
        ca = wire.certificate.write_ca_bundle(str(tmp_path / "lab-ca.pem"))
        s = inventory.server("mbx1")
        port = urlsplit(wire.exchange_uri("mbx1")).port
        by_name = dataclasses.replace(
            lab_connection(s.connection, wire.exchange_uri("mbx1"), wire.windows_uri("mbx1"), ca),
            health_uri=f"https://{s.fqdn}:{port}",
        )
        by_address = dataclasses.replace(by_name, connect_address="127.0.0.1")
        reached = HttpsGetter(dataclasses.replace(s, connection=by_address), Transcript())
        answer = reached.get("/owa/healthcheck.htm")
        assert (answer.status, answer.body, answer.url) == (
            200,
            f"200 OK<br/>{s.fqdn}",
            f"https://127.0.0.1:{port}/owa/healthcheck.htm",
        )
        unresolved = HttpsGetter(dataclasses.replace(s, connection=by_name), Transcript()).get("/owa/healthcheck.htm")
        assert unresolved.status is None and unresolved.error
