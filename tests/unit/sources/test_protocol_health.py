"""The protocols' health pages: read from the page itself, asked with the server's TLS settings, judged purely."""

from __future__ import annotations

import dataclasses

import pytest

from dagcheck.catalogue import CheckFailure
from dagcheck.collect import Collector
from dagcheck.inventory import load_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.embedded import lab_connection
from dagcheck.lab.server import LabServer
from dagcheck.lab.settings import Fault
from dagcheck.remote.base import HttpAnswer, Transcript
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.https import HttpsGetter
from dagcheck.remote.psrp import PsrpTransport
from dagcheck.sources import protocol_health as ph
from tests.conftest import ROOT

OWA = ph.PROTOCOLS[0]
URL = "https://ex1/owa/healthcheck.htm"


def test_a_healthy_page_names_the_server_that_answered() -> None:
    got = ph.parse(HttpAnswer(URL, 200, 0.0123, "200 OK<br/>EX1.contoso.com"), "EX1", OWA, "ex1.contoso.com")
    assert (got.status, got.first_line, got.answered_by, got.key) == (200, "200 OK", "EX1.contoso.com", "ex1:OWA")


def test_an_unhealthy_page_keeps_status_and_first_line() -> None:
    body = "<html><head><title>Service Unavailable</title></head>\n<body>x</body></html>"
    got = ph.parse(HttpAnswer("u", 503, 0.2, body), "ex1", OWA, "ex1.contoso.com")
    assert (got.status, got.first_line, got.answered_by) == (503, "Service Unavailable", None)


def _check():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_proto_check", ROOT / "checks" / "test_protocol_health.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.test_protocol_answers_health_page


@pytest.mark.parametrize(
    "answer,phrase",
    [
        (
            HttpAnswer(URL, 503, 0.5, "Service Unavailable"),
            "gave HTTP 503 after 0.50 s: Service Unavailable",
        ),
        (
            HttpAnswer(URL, None, 3.0, "", "connection refused (x)"),
            "no answer after 3.00 s: connection refused",
        ),
        (
            HttpAnswer(URL, 200, 0.1, "200 OK<br/>ex2.contoso.com"),
            "answered by ex2.contoso.com, not ex1",
        ),
    ],
)
def test_the_check_names_protocol_server_status_and_what_was_not_tried(answer, phrase) -> None:
    item = ph.parse(answer, "ex1", OWA, "ex1.contoso.com")
    with pytest.raises(CheckFailure) as failure:
        _check()(item)
    assert phrase in failure.value.message and "OWA" in failure.value.message
    if answer.status != 200:
        assert "not tried: a forms-based logon" in failure.value.message


def test_pages_are_asked_with_the_servers_trust_store(tmp_path) -> None:
    """Over the lab's HTTPS: trusted through connection.ca_bundle the page answers; without it the same
    request fails on the certificate, as the PowerShell connection would (the same settings)."""
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    org = build_organization(inventory)
    with LabServer(org, https=True) as wire:
        ca = wire.certificate.write_ca_bundle(str(tmp_path / "lab-ca.pem"))
        s = inventory.server("mbx1")
        base = lab_connection(s.connection, wire.exchange_uri("mbx1"), wire.windows_uri("mbx1"), ca)
        trusted = HttpsGetter(dataclasses.replace(s, connection=base), Transcript())
        answer = trusted.get(OWA.path)
        assert (answer.status, answer.body) == (200, "200 OK<br/>mbx1.lab.contoso.test")
        assert answer.url.startswith("https://127.0.0.1:")
        untrusted = HttpsGetter(dataclasses.replace(s, connection=dataclasses.replace(base, ca_bundle=None)), Transcript())
        refused = untrusted.get(OWA.path)
        assert refused.status is None and "TLS failed" in (refused.error or "")


def test_protocol_unhealthy_fault_makes_only_that_page_answer_503_and_each_page_is_asked_once() -> None:
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    org = build_organization(inventory)
    org.runtime_faults.append(Fault("protocol_unhealthy", {"server": "mbx2", "protocol": "EWS"}))
    with LabServer(org) as wire:
        servers = {
            s.name: dataclasses.replace(
                s, connection=lab_connection(s.connection, wire.exchange_uri(s.name), wire.windows_uri(s.name))
            )
            for s in inventory.servers
        }
        creds = {n: Credentials(wire.credentials.username, wire.credentials.password) for n in servers}
        transport = PsrpTransport(servers, credentials=creds)
        try:
            snap = Collector(transport).snapshot("mbx2", "health")
            pages = {p.protocol: p for p in snap.get("protocol_health")}
            assert snap.get("protocol_health") is snap.get("protocol_health")  # memoized: asked once per phase
        finally:
            transport.close()
    assert {n for n, p in pages.items() if p.status != 200} == {"EWS"}
    assert pages["EWS"].status == 503 and pages["OWA"].answered_by == "mbx2.lab.contoso.test"
    asked = [i.command.render() for i in transport.transcript.invocations if i.command.cmdlet == "Invoke-WebRequest"]
    assert len(asked) == len(ph.PROTOCOLS) == len(set(asked))
