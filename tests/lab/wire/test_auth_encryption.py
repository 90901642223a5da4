"""Production authentication: Kerberos from a real KDC, and NTLM, with WSMan message encryption on HTTP.

The lab serves Negotiate as a WinRM listener does with AllowUnencrypted false (dagcheck.lab.auth);
dagcheck connects as an administrator's inventory says: `auth: kerberos`, `encryption: auto`, the
ticket from the user's cache (kinit), the server's FQDN in the URI (its SPN HTTP/<fqdn>) and the
address to reach it by in `connect_address`, since the lab's FQDNs resolve nowhere.
"""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import Iterator
from typing import Any

import pytest
import spnego
import yaml
from pypsrp.encryption import WinRMEncryption

from dagcheck.errors import ConnectionFailed, InventoryError
from dagcheck.inventory import load_inventory
from dagcheck.lab import auth
from dagcheck.lab.auth import LabCredentials, NegotiateAcceptor, NtlmStore
from dagcheck.lab.build import build_organization
from dagcheck.lab.server import LabServer
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.psrp import PsrpTransport
from tests.conftest import LAB_YML, lab_data
from tests.kdc import Kdc, missing

USER_ENV, PASSWORD_ENV = "DAGCHECK_TEST_NTLM_USER", "DAGCHECK_TEST_NTLM_PASSWORD"


@pytest.fixture(scope="module")
def kdc() -> Iterator[Kdc]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    inventory = load_inventory(LAB_YML)
    realm = Kdc([s.fqdn for s in inventory.servers]).start()
    saved = {k: os.environ.get(k) for k in realm.env}
    os.environ.update(realm.env)  # the lab (acceptor) and dagcheck (initiator) share this process
    try:
        yield realm
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        realm.stop()


@pytest.fixture(scope="module")
def lab(kdc: Kdc) -> Iterator[LabServer]:
    with LabServer(build_organization(load_inventory(LAB_YML)), auth="negotiate") as server:
        yield server


def _inventory(lab: LabServer, **connection: Any) -> dict[str, Any]:
    """lab.yml as a production inventory: no lab section, each server reached at its FQDN on the lab's port."""
    data = copy.deepcopy(lab_data())
    data.pop("lab")
    for server in data["servers"]:
        port = lab.port(server["name"])
        server["connection"] = {
            "exchange_uri": f"http://{server['fqdn']}:{port}/PowerShell",
            "windows_uri": f"http://{server['fqdn']}:{port}/wsman",
            "connect_address": "127.0.0.1",
            # the protocols' health pages: the same simulated server's listener (asked directly, not by FQDN)
            "health_uri": f"http://127.0.0.1:{port}",
            "encryption": "auto",
            "operation_timeout": 20,
            "read_timeout": 30,
            **connection,
        }
    return data


def _transport(lab: LabServer, tmp_path: Any, **connection: Any) -> PsrpTransport:
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(_inventory(lab, **connection)), encoding="utf-8")
    inventory = load_inventory(path)
    return PsrpTransport({s.name: s for s in inventory.servers})


def test_nightly_health_over_kerberos_with_encryption(kdc: Kdc, lab: LabServer, run_checks) -> None:
    kdc.kinit()
    result = run_checks(_inventory(lab, auth="kerberos"))
    assert not result.failed(), sorted(result.short_failed())[:5]
    assert result.exit_code == 0 and len(result.outcomes) > 500
    owners = {s.owner for s in lab.open_shells()}
    assert not owners, f"shells left open by {owners}"


def test_nightly_health_over_ntlm_with_encryption(lab: LabServer, run_checks, monkeypatch) -> None:
    monkeypatch.setenv(USER_ENV, lab.credentials.username)
    monkeypatch.setenv(PASSWORD_ENV, lab.credentials.password)
    result = run_checks(_inventory(lab, auth="ntlm", username_env=USER_ENV, password_env=PASSWORD_ENV))
    assert not result.failed(), sorted(result.short_failed())[:5]
    assert result.exit_code == 0 and len(result.outcomes) > 500


def test_the_kerberos_principal_owns_the_shells(kdc: Kdc, lab: LabServer, tmp_path) -> None:
    """The lab knows who authenticated: the quotas count the Kerberos principal's shells."""
    kdc.kinit()
    transport = _transport(lab, tmp_path, auth="kerberos")
    try:
        assert transport.run("mbx3", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx3"))
        assert {s.owner for s in lab.open_shells("mbx3")} == {kdc.principal}
    finally:
        transport.close()
    assert not lab.open_shells("mbx3")


def test_wrong_ntlm_password_fails_with_one_clear_reason(lab: LabServer, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(USER_ENV, lab.credentials.username)
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    transport = _transport(lab, tmp_path, auth="ntlm", username_env=USER_ENV, password_env=PASSWORD_ENV)
    with pytest.raises(ConnectionFailed) as exc:
        transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx1"))
    message = str(exc.value)
    assert "mbx1" in message and "authentication failed" in message
    assert "not-the-password" not in message
    assert not lab.open_shells("mbx1")


def test_kerberos_without_a_ticket_says_to_kinit(kdc: Kdc, lab: LabServer, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KRB5CCNAME", "FILE:" + str(tmp_path / "empty-ccache"))
    transport = _transport(lab, tmp_path, auth="kerberos")
    with pytest.raises(ConnectionFailed) as exc:
        transport.run("mbx2", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx2"))
    assert "Kerberos authentication failed" in str(exc.value) and "kinit" in str(exc.value)


def test_wrong_kerberos_password_gets_no_ticket(kdc: Kdc) -> None:
    """A wrong password fails at kinit, at the KDC, before dagcheck runs (as with Active Directory)."""
    with pytest.raises(RuntimeError, match="kinit failed"):
        kdc.kinit(password="not-the-password")


def test_unencrypted_messages_are_refused_on_http(kdc: Kdc, lab: LabServer, tmp_path) -> None:
    """AllowUnencrypted false, the Windows default: a plaintext SOAP message after Negotiate is refused,
    which is what proves the health runs above were sealed end to end."""
    kdc.kinit()
    transport = _transport(lab, tmp_path, auth="kerberos", encryption="never")
    with pytest.raises(ConnectionFailed) as exc:
        transport.run("mbx4", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx4"))
    assert "mbx4" in str(exc.value)


# ---- the framing alone, over NTLM in this process (no KDC needed) ----------------------------------


@pytest.fixture
def ntlm_pair() -> Iterator[tuple[Any, Any]]:
    """An authenticated NTLM client (pyspnego, as pypsrp makes it) and the lab's acceptor for it."""
    creds = LabCredentials.generate()
    store = NtlmStore(creds)
    try:
        client = spnego.client(creds.username, creds.password, protocol="ntlm", options=spnego.NegotiateOptions.wrapping_winrm)
        acceptor = NegotiateAcceptor("mbx1.lab.contoso.test")
        token = client.step()
        while not acceptor.complete:
            step = acceptor.step("Negotiate " + base64.b64encode(token).decode())
            token = client.step(step.token) if step.token else token
        yield client, acceptor.context
    finally:
        store.remove()


def _client_sealed(client: Any, message: bytes) -> tuple[str, bytes]:
    content_type, body = WinRMEncryption(client, WinRMEncryption.SPNEGO).wrap_message(message)
    return f'{content_type};protocol="{WinRMEncryption.SPNEGO}";boundary="Encrypted Boundary"', body


def test_sealed_messages_round_trip_with_the_client_framing(ntlm_pair) -> None:
    client, server = ntlm_pair
    soap = b"<s:Envelope>" + b"x" * 5000 + b"</s:Envelope>"
    assert auth.unwrap(server, *_client_sealed(client, soap)) == (soap, auth.SPNEGO_PROTOCOL)
    content_type, body = auth.wrap(server, b"<reply/>")
    assert content_type.startswith("multipart/encrypted;") and b"<reply/>" not in body
    assert WinRMEncryption(client, WinRMEncryption.SPNEGO).unwrap_message(body, "Encrypted Boundary") == b"<reply/>"


def test_a_tampered_or_misdeclared_sealed_message_is_refused(ntlm_pair) -> None:
    client, server = ntlm_pair
    content_type, body = _client_sealed(client, b"<s:Envelope>hello</s:Envelope>")
    tampered = body[:-30] + bytes([body[-30] ^ 1]) + body[-29:]
    with pytest.raises(auth.EncryptionError, match="does not unseal"):
        auth.unwrap(server, content_type, tampered)
    content_type, body = _client_sealed(client, b"<s:Envelope>hello</s:Envelope>")
    with pytest.raises(auth.EncryptionError, match="shorter than its declared Length"):
        auth.unwrap(server, content_type, body.replace(b"Length=30", b"Length=99"))
    with pytest.raises(auth.EncryptionError, match="not authenticated"):
        auth.unwrap(None, content_type, body)
    with pytest.raises(auth.EncryptionError, match="unsupported"):
        auth.unwrap(server, content_type.replace("SPNEGO", "CredSSP"), body)


def test_a_ticket_for_another_servers_spn_is_refused(kdc: Kdc, lab: LabServer, tmp_path) -> None:
    """Each lab server accepts only its own HTTP/<fqdn>: a ticket for mbx2 presented at mbx1 fails."""
    kdc.kinit()
    data = _inventory(lab, auth="kerberos")
    mbx1 = next(s for s in data["servers"] if s["name"] == "mbx1")
    port = lab.port("mbx1")
    mbx1["connection"]["exchange_uri"] = f"http://mbx2.lab.contoso.test:{port}/PowerShell"
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    transport = PsrpTransport({s.name: s for s in load_inventory(path).servers})
    with pytest.raises(ConnectionFailed, match="authentication failed"):
        transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx1"))


def test_the_ntlm_lab_also_seals_messages(tmp_path, monkeypatch) -> None:
    """`LabServer(auth="ntlm")` (NTLM only, as `dagcheck-lab serve --auth ntlm`) with encryption: auto."""
    with LabServer(build_organization(load_inventory(LAB_YML)), auth="ntlm") as server:
        monkeypatch.setenv(USER_ENV, server.credentials.username)
        monkeypatch.setenv(PASSWORD_ENV, server.credentials.password)
        transport = _transport(server, tmp_path, auth="ntlm", username_env=USER_ENV, password_env=PASSWORD_ENV)
        try:
            assert transport.run("mbx2", Endpoint.WINDOWS, Command.of("Get-ClusterNode"))
            assert "RUNNING" in transport.run_cmd("mbx2", "sc.exe query MSExchangeTransport").stdout  # WinRS, sealed
        finally:
            transport.close()


def test_connect_address_is_validated(tmp_path) -> None:
    data = lab_data()
    data["servers"][0]["connection"] = {"connect_address": "10.0.0.1/PowerShell"}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(InventoryError, match=r"servers\[0\]\.connection\.connect_address"):
        load_inventory(path)


def test_a_ticket_refused_by_one_server_does_not_stop_kerberos_on_the_others(kdc: Kdc, lab: LabServer, tmp_path) -> None:
    """Issue 24, item 11: mbx2's URI names mbx3 (a wrong SPN for that server): the ticket for HTTP/mbx3 is
    refused by mbx2, which fails alone; Kerberos goes on working on every other server of the run."""
    kdc.kinit()
    data = _inventory(lab, auth="kerberos")
    wrong = next(s for s in data["servers"] if s["name"] == "mbx2")
    port = lab.port("mbx2")
    wrong["connection"]["exchange_uri"] = f"http://mbx3.lab.contoso.test:{port}/PowerShell"
    wrong["connection"]["windows_uri"] = f"http://mbx3.lab.contoso.test:{port}/wsman"
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    transport = PsrpTransport({s.name: s for s in load_inventory(path).servers})
    try:
        with pytest.raises(ConnectionFailed) as exc:
            transport.run("mbx2", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx2"))
        assert "mbx2" in str(exc.value) and "only this server is affected" in str(exc.value)
        for name in ("mbx1", "mbx3", "mbx4"):
            assert transport.run(name, Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity=name))
        assert set(transport.states.blind()) == {"mbx2"}
    finally:
        transport.close()
