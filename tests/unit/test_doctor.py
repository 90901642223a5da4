"""`dagcheck doctor` (issue 25): each server diagnosed layer by layer against the lab, stopping at the first
failing layer and naming its fix; and the main job naming a TLS failure as TLS, not "unreachable".

The lab is served on loopback (plain HTTP, or HTTPS with the certificate it makes at start) and reached as
real servers are: through an inventory without a lab: section and credentials from the environment.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from dagcheck import discover, doctor, locate
from dagcheck.errors import ConnectionFailed
from dagcheck.inventory import load_inventory, parse_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.persist import PASSWORD_ENV, USERNAME_ENV, inventory_for
from dagcheck.lab.server import LabServer
from dagcheck.lab.settings import Fault
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.psrp import PsrpTransport
from dagcheck.sources import registry
from tests.conftest import ROOT, lab_data


def _start(https: bool = False) -> tuple[Any, LabServer]:
    org = build_organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    return org, LabServer(org, https=https).start()


@pytest.fixture
def lab(monkeypatch):
    org, server = _start()
    monkeypatch.setenv(USERNAME_ENV, server.credentials.username)
    monkeypatch.setenv(PASSWORD_ENV, server.credentials.password)
    try:
        yield org, server
    finally:
        server.stop()


def _inventory(server: LabServer, ca_bundle: str | None = None, **edit: Any):
    data = inventory_for(lab_data(), server.exchange_uri, server.windows_uri, ca_bundle, "basic")
    for name, changes in edit.items():
        next(s for s in data["servers"] if s["name"] == name)["connection"].update(changes)
    return parse_inventory(data, "doctor-test.yml")


def _diagnose(server: LabServer, **edit: Any) -> dict[str, doctor.ServerReport]:
    inventory = _inventory(server, **edit)
    return {r.server: r for r in doctor.run(list(inventory.servers))}


def test_every_server_of_the_healthy_lab_is_ready(lab) -> None:
    org, server = lab
    reports = _diagnose(server)
    assert all(r.ready for r in reports.values()), doctor.render(list(reports.values()))
    table = doctor.render(list(reports.values()))
    assert "mbx1: ready (configuration Microsoft.Exchange; Exchange 15.2." in table
    assert [line.split()[-1] for line in table.splitlines()[2:6]] == ["ready"] * 4


def test_a_wrong_password_is_named_authentication_and_costs_at_most_two_failed_logons(lab, monkeypatch) -> None:
    org, server = lab
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    reports = _diagnose(server)
    assert {r.failed.layer for r in reports.values() if r.failed} == {"auth"}
    # the refusal is proven on a second server (the main job's rule), the other two are not tried
    assert sum(server.failed_logons.values()) == 2, server.failed_logons
    first = reports["mbx1"].failed
    assert "offered Basic; using basic" in first.detail and "authentication failed for" in first.detail
    assert "password" in first.advice
    assert org.call_log == []  # nothing reached Exchange


def test_a_self_signed_certificate_not_trusted_is_named_tls_chain_with_how_to_trust_the_ca(monkeypatch, tmp_path) -> None:
    org, server = _start(https=True)
    monkeypatch.setenv(USERNAME_ENV, server.credentials.username)
    monkeypatch.setenv(PASSWORD_ENV, server.credentials.password)
    try:
        untrusted = _inventory(server)  # no ca_bundle: the lab's self-signed certificate is not trusted
        reports = {r.server: r for r in doctor.run(list(untrusted.servers))}
        calls_before_trusting = list(org.call_log)
        trusted = _inventory(server, ca_bundle=server.certificate.write_ca_bundle(str(tmp_path / "ca.pem")))
        trusted_reports = doctor.run(list(trusted.servers))
    finally:
        server.stop()
    failed = reports["mbx2"].failed
    assert failed.layer == "tls" and "certificate chain check failed" in failed.detail and "self-signed" in failed.detail
    assert "connection.ca_bundle" in failed.advice
    assert [f.layer for f in reports["mbx2"].findings] == ["name", "tcp", "tls"]  # stopped there
    assert server.failed_logons == {} and calls_before_trusting == []
    assert all(r.ready for r in trusted_reports), doctor.render(trusted_reports)
    assert "expires in" in next(f.detail for f in trusted_reports[0].findings if f.layer == "tls")


def test_a_certificate_for_another_name_is_named_tls_name(monkeypatch, tmp_path) -> None:
    """Trusted, but the lab's certificate names localhost and 127.0.0.1, not the FQDN in the URI."""
    org, server = _start(https=True)
    monkeypatch.setenv(USERNAME_ENV, server.credentials.username)
    monkeypatch.setenv(PASSWORD_ENV, server.credentials.password)
    port = server.port("mbx1")
    try:
        ca = server.certificate.write_ca_bundle(str(tmp_path / "ca.pem"))
        inventory = _inventory(
            server,
            ca_bundle=ca,
            mbx1={
                "exchange_uri": f"https://mbx1.lab.contoso.test:{port}/PowerShell",
                "windows_uri": f"https://mbx1.lab.contoso.test:{port}/wsman",
                "connect_address": "127.0.0.1",
            },
        )
        [report] = doctor.run([inventory.server("mbx1")])
    finally:
        server.stop()
    assert report.failed.layer == "tls" and "certificate name check failed" in report.failed.detail
    assert "subject alternative names" in report.failed.advice and "connect_address" in report.failed.advice


def test_a_cmdlet_missing_from_the_session_is_named_rbac(lab) -> None:
    """cmdlet_missing: a role group that does not grant Get-Queue on mbx3 (Exchange leaves it out of the
    session, so Get-Command there does not list it)."""
    org, server = lab
    org.runtime_faults.append(Fault("cmdlet_missing", {"server": "mbx3", "cmdlet": "Get-Queue"}))
    reports = _diagnose(server)
    failed = reports["mbx3"].failed
    assert failed.layer == "rbac" and "the session lacks Get-Queue" in failed.detail
    assert "View-Only Organization Management" in failed.advice
    assert all(reports[n].ready for n in ("mbx1", "mbx2", "mbx4"))


def test_a_closed_windows_port_is_named_tcp_of_the_windows_endpoint(lab) -> None:
    org, server = lab
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # bound once, now nothing listens there
    reports = _diagnose(server, mbx4={"windows_uri": f"http://127.0.0.1:{port}/wsman"})
    failed = reports["mbx4"].failed
    assert failed.layer == "tcp" and f"Windows endpoint 127.0.0.1:{port} refused" in failed.detail
    assert "WinRM" in failed.advice and "5986" in failed.advice
    assert f"mbx4: TCP: Windows endpoint 127.0.0.1:{port} refused. Fix: " in doctor.render(list(reports.values()))


def test_windows_not_admin_is_named_at_the_windows_endpoint(lab) -> None:
    org, server = lab
    org.runtime_faults.append(Fault("windows_not_admin", {"server": "mbx2"}))
    failed = _diagnose(server)["mbx2"].failed
    assert failed.layer == "windows" and "not in BUILTIN\\Administrators" in failed.detail


def test_a_name_that_does_not_resolve_stops_at_name_resolution(lab) -> None:
    org, server = lab
    failed = _diagnose(server, mbx1={"exchange_uri": "https://mbx1.invalid/PowerShell"})["mbx1"].failed
    assert failed.layer == "name" and "cannot resolve mbx1.invalid" in failed.detail


def test_the_needed_cmdlets_come_from_the_sources_not_a_hand_list() -> None:
    needed = doctor.needed_cmdlets()
    for source in registry.SOURCES.values():
        if source.endpoint is Endpoint.EXCHANGE:
            assert {c.cmdlet for c in source.commands("x")} <= set(needed)
    assert {s.CMDLET for s in discover.SOURCES} <= set(needed)
    assert "Get-ClusterNode" not in needed  # the Windows endpoint's, not the Exchange session's


def test_the_main_job_names_an_untrusted_certificate_tls_not_unreachable(tmp_path) -> None:
    """The transport's 'could not check' reason for a certificate that does not verify is TLS, with the fix."""
    org, server = _start(https=True)
    try:
        inventory = _inventory(server)
        s = inventory.server("mbx1")
        from dagcheck.remote.credentials import Credentials

        transport = PsrpTransport(
            {"mbx1": s}, credentials={"mbx1": Credentials(server.credentials.username, server.credentials.password)}
        )
        try:
            with pytest.raises(ConnectionFailed) as exc:
                transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-ExchangeServer", Identity="mbx1"))
        finally:
            transport.close()
    finally:
        server.stop()
    assert exc.value.reason.startswith("TLS: certificate chain check failed")
    assert "connection.ca_bundle" in exc.value.reason
    assert transport.states.blind()["mbx1"].kind == "tls"


def test_doctor_command_on_the_embedded_lab_says_so_and_exits_0(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DAGCHECK_INVENTORY", raising=False)
    monkeypatch.setattr(locate, "SYSTEM", tmp_path / "etc-inventory.yml")
    assert doctor.main(None, ["mbx2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "simulated lab" in out[0]
    assert len([line for line in out if line.startswith("mbx2")]) == 2 and "mbx1" not in "".join(out[1:])
    assert doctor.main(None, ["mbx9"]) == 4
    assert Path(tmp_path).exists()


@pytest.mark.parametrize(
    "code,message,part",
    [
        (18, "self-signed certificate", "chain"),
        (20, "unable to get local issuer certificate", "chain"),
        (62, "Hostname mismatch, certificate is not valid for 'ex01.contoso.com'.", "name"),
        (10, "certificate has expired", "expiry"),
        (9, "certificate is not yet valid", "expiry"),
    ],
)
def test_a_certificate_failure_is_told_by_its_part(code: int, message: str, part: str) -> None:
    from dagcheck.remote.diagnosis import classify

    failure = classify(code, message, "ex01.contoso.com")
    assert failure.part == part and message in failure.detail and failure.reason.startswith("TLS: certificate")


def test_a_mechanism_the_server_does_not_offer_is_named_before_any_logon(lab) -> None:
    org, server = lab
    report = _diagnose(server, mbx2={"auth": "ntlm"})["mbx2"]
    assert report.failed.layer == "auth" and "the server offers Basic; connection.auth is ntlm" in report.failed.detail
    assert server.failed_logons == {} and not any(c[0] == "mbx2" for c in org.call_log)


def test_kerberos_names_the_spn_asked_for_and_the_kdcs_answer(lab, monkeypatch) -> None:
    """The FQDN stays in the URI (the SPN), the connection goes to the address: HTTP/<fqdn> is asked for."""
    org, server = lab
    port = server.port("mbx3")
    where = {
        "exchange_uri": f"http://mbx3.lab.contoso.test:{port}/PowerShell",
        "auth": "kerberos",
        "windows_uri": f"http://mbx3.lab.contoso.test:{port}/wsman",
        "connect_address": "127.0.0.1",
    }
    failed = _diagnose(server, mbx3=where)["mbx3"].failed  # no ticket here (nor perhaps gssapi): the library says why
    assert failed.layer == "auth" and failed.detail.startswith("Kerberos: SPN HTTP/mbx3.lab.contoso.test: ")
    assert "kinit" in failed.advice and "setspn -Q HTTP/mbx3.lab.contoso.test" in failed.advice
    asked: list[str] = []
    monkeypatch.setattr(
        doctor, "kerberos_ticket", lambda host: (asked.append(host), (False, "Server not found in Kerberos database"))[1]
    )
    failed = _diagnose(server, mbx3=where)["mbx3"].failed
    assert asked == ["mbx3.lab.contoso.test"] and failed.detail.endswith("Server not found in Kerberos database")
    assert server.failed_logons == {}
