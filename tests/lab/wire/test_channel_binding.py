"""Extended Protection on the lab's own endpoints: Windows authentication bound to the TLS channel.

With tokenChecking Require on the PowerShell application (a CU or an administrator can set it; the fault
ep_mismatch does in the lab), IIS refuses an NTLM logon without a channel binding token or with one for
another channel; the WinRM service (/wsman, CbtHardeningLevel Relaxed by default) refuses only a wrong one.
dagcheck's connection binds its logon to the channel (pypsrp sends the token over HTTPS), so it passes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypsrp.exceptions import AuthenticationError
from pypsrp.negotiate import HTTPNegotiateAuth
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from dagcheck.inventory import load_inventory
from dagcheck.lab import auth
from dagcheck.lab.build import build_organization
from dagcheck.lab.embedded import lab_connection
from dagcheck.lab.faults import apply_fault
from dagcheck.lab.server import LabServer
from dagcheck.lab.settings import Fault
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.psrp import PsrpTransport
from tests.conftest import ROOT

REQUIRE_ON_POWERSHELL = Fault("ep_mismatch", {"server": "mbx1", "vdir": "PowerShell (Default Web Site)", "value": "Require"})


@pytest.fixture
def https_ntlm_lab(tmp_path: Path) -> Iterator[tuple[LabServer, str]]:
    org = build_organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    apply_fault(org, REQUIRE_ON_POWERSHELL)
    with LabServer(org, https=True, auth="ntlm") as server:
        yield server, server.certificate.write_ca_bundle(str(tmp_path / "lab-ca.pem"))


def _open(
    server: LabServer, ca: str, path: str = "PowerShell", configuration: str = "Microsoft.Exchange", send_cbt: bool = True
) -> list[object]:
    wsman = WSMan(
        "127.0.0.1",
        port=server.port("mbx1"),
        path=path,
        ssl=True,
        auth="ntlm",
        cert_validation=ca,
        username=server.credentials.username,
        password=server.credentials.password,
        negotiate_send_cbt=send_cbt,
    )
    with RunspacePool(wsman, configuration_name=configuration) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-ClusterNode" if configuration == "Microsoft.PowerShell" else "Get-MailboxServer")
        return ps.invoke()


def test_dagcheck_binds_its_logon_to_the_channel_and_passes_extended_protection(https_ntlm_lab) -> None:
    server, ca = https_ntlm_lab
    assert server.org.server("mbx1").iis[("Default Web Site", "PowerShell")].token_checking == "Require"
    s = load_inventory(ROOT / "inventory" / "lab.yml").server("mbx1")
    conn = lab_connection(s.connection, server.exchange_uri("mbx1"), server.windows_uri("mbx1"), ca_bundle=ca, auth="ntlm")
    transport = PsrpTransport(
        {"mbx1": s.__class__(s.name, s.fqdn, s.site, s.dag, conn)},
        credentials={"mbx1": Credentials(server.credentials.username, server.credentials.password)},
    )
    try:
        assert transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx1"))
        assert transport.run("mbx1", Endpoint.WINDOWS, Command.of("Get-ClusterNode"))
    finally:
        transport.close()
    assert server.failed_logons == {}


def test_a_client_without_a_channel_binding_token_is_refused_where_it_is_required(https_ntlm_lab) -> None:
    server, ca = https_ntlm_lab
    with pytest.raises(AuthenticationError):
        _open(server, ca, send_cbt=False)
    assert _open(server, ca)  # the same account, bound to the channel, is let in
    assert server.failed_logons == {}  # the password was right: IIS refused, not the domain controller


def test_a_token_for_another_channel_is_refused_on_both_endpoints(https_ntlm_lab, monkeypatch) -> None:
    server, ca = https_ntlm_lab
    other = b"tls-server-end-point:" + hashlib.sha256(b"a certificate of a TLS-inspecting proxy").digest()
    monkeypatch.setattr(HTTPNegotiateAuth, "_get_cbt_data", staticmethod(lambda response: other))
    with pytest.raises(AuthenticationError):
        _open(server, ca)
    with pytest.raises(AuthenticationError):  # WinRM's Relaxed hardening also refuses a wrong token
        _open(server, ca, path="wsman", configuration="Microsoft.PowerShell")


def test_without_extended_protection_or_on_winrm_a_client_without_a_token_is_let_in(tmp_path) -> None:
    with LabServer(build_organization(load_inventory(ROOT / "inventory" / "lab.yml")), https=True, auth="ntlm") as server:
        ca = server.certificate.write_ca_bundle(str(tmp_path / "lab-ca.pem"))
        assert server.org.server("mbx1").iis[("Default Web Site", "PowerShell")].token_checking == "None"
        assert _open(server, ca, send_cbt=False)
        assert _open(server, ca, path="wsman", configuration="Microsoft.PowerShell", send_cbt=False)


def test_the_ntlm_channel_binding_is_read_from_the_authenticate_message() -> None:
    """MS-NLMP: MsvAvChannelBindings (AvId 10) in the NTLMv2 response's AV pairs; an all-zero hash means none."""
    bindings = auth.tls_channel_bindings(b"certificate")
    expected = hashlib.md5(bindings.pack()).digest()  # noqa: S324

    def authenticate(pairs: bytes) -> bytes:
        response = b"\x11" * 16 + b"\x01\x01" + b"\x00" * 26 + pairs + b"\x00\x00\x00\x00"
        return (
            auth.NTLMSSP
            + b"\x03\x00\x00\x00"
            + b"\x00" * 8
            + len(response).to_bytes(2, "little") * 2
            + (64).to_bytes(4, "little")
            + b"\x00" * 36
            + response
        )

    bound = authenticate(b"\x0a\x00\x10\x00" + expected)
    assert auth.ntlm_channel_binding(bound) == expected
    assert auth.ntlm_channel_binding(authenticate(b"\x01\x00\x02\x00ab")) is None
    assert auth.channel_binding_allowed("Require", expected, bindings)
    assert not auth.channel_binding_allowed("Require", None, bindings)
    assert not auth.channel_binding_allowed("Require", b"\x00" * 16, bindings)
    assert auth.channel_binding_allowed("Allow", None, bindings)
    assert not auth.channel_binding_allowed("Allow", b"\x01" * 16, bindings)
    assert auth.channel_binding_allowed("None", b"\x01" * 16, bindings)
