"""The lab speaks WSMan + PSRP: a plain pypsrp client that knows nothing of dagcheck can use it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pypsrp.client import Client
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from dagcheck.errors import CmdletFailed, ConnectionFailed, Throttled
from dagcheck.inventory import load_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.embedded import lab_connection
from dagcheck.lab.server import LabServer
from dagcheck.lab.settings import Fault
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.psrp import PsrpTransport
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def lab():
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    with LabServer(build_organization(inventory)) as server:
        yield inventory, server


def _plain_wsman(server: LabServer, name: str, password: str | None = None) -> WSMan:
    """What any pypsrp user would write to reach the lab: HTTP, Basic, no message encryption."""
    return WSMan(
        "127.0.0.1",
        port=server.port(name),
        path="PowerShell",
        ssl=False,
        auth="basic",
        username=server.credentials.username,
        password=password or server.credentials.password,
        encryption="never",
    )


def test_plain_pypsrp_script_reads_component_states(lab) -> None:
    _, server = lab
    with RunspacePool(_plain_wsman(server, "mbx1"), configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-ServerComponentState").add_parameter("Identity", "mbx1")
        output = ps.invoke()
    assert not ps.had_errors
    states = {o.adapted_properties["Component"]: str(o.adapted_properties["State"]) for o in output}
    assert states["HubTransport"] == "Active" and states["ForwardSyncDaemon"] == "Inactive"
    assert len(states) == 34


def test_wrong_password_gets_401(lab) -> None:
    _, server = lab
    wsman = _plain_wsman(server, "mbx2", password="wrong")
    # pypsrp turns the server's 401 into AuthenticationError, chained to the HTTP error.
    with pytest.raises(AuthenticationError) as exc:
        RunspacePool(wsman, configuration_name="Microsoft.Exchange").open()
    assert "401" in str(exc.value.__context__)


def _transport(lab, password: str | None = None) -> PsrpTransport:
    inventory, server = lab
    servers = {
        s.name: s.__class__(
            s.name, s.fqdn, s.site, s.dag, lab_connection(s.connection, server.exchange_uri(s.name), server.windows_uri(s.name))
        )
        for s in inventory.servers
    }
    creds = {n: Credentials(server.credentials.username, password or server.credentials.password) for n in servers}
    return PsrpTransport(servers, credentials=creds, throttle_retries=0)


def test_wrong_credentials_fail_clearly_through_the_transport(lab) -> None:
    transport = _transport(lab, password="nope")
    # Refused by mbx1, then proven wrong on a second server (issue 24 item 2): the reason names both.
    with pytest.raises(
        ConnectionFailed, match=r"authentication failed for lab\\dagcheck on mbx1 and mbx2: .*Failed to authenticate"
    ):
        transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-ExchangeServer", Identity="mbx1"))


def test_unknown_cmdlet_and_parameter_give_powershell_error_records(lab) -> None:
    transport = _transport(lab)
    try:
        with pytest.raises(CmdletFailed, match="is not recognized as the name of a cmdlet") as exc:
            transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-Mailboxx"))
        assert exc.value.category == "ObjectNotFound" and exc.value.error_id == "CommandNotFoundException"
        with pytest.raises(CmdletFailed, match="A parameter cannot be found that matches parameter name 'Bogus'"):
            transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-Queue", Bogus="x"))
        # Windows cmdlets are not on the Exchange endpoint, and the other way round.
        with pytest.raises(CmdletFailed, match="Get-ClusterNode"):
            transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-ClusterNode"))
        nodes = transport.run("mbx1", Endpoint.WINDOWS, Command.of("Get-ClusterNode"))
        assert sorted(str(n.State) for n in nodes) == ["Up"] * 4
        exsetup = transport.run("mbx1", Endpoint.WINDOWS, Command.of("Get-Command", member="FileVersionInfo", Name="ExSetup.exe"))
        assert exsetup[0].FileVersion == "15.02.2562.049"  # the lab is Exchange SE RTM Sep26SU
    finally:
        transport.close()


def test_one_pool_per_server_and_endpoint_is_reused(lab) -> None:
    transport = _transport(lab)
    try:
        for _ in range(3):
            transport.run("mbx2", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx2"))
        assert len(transport._pools) == 1
        assert transport.transcript.count("Get-MailboxServer", "mbx2") == 3
    finally:
        transport.close()


def test_script_text_is_refused_like_a_nolanguage_endpoint(lab) -> None:
    _, server = lab
    with RunspacePool(_plain_wsman(server, "mbx1"), configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-Queue | Remove-Message")
        ps.invoke()
    assert ps.streams.error and "no-language mode" in str(ps.streams.error[0])


def test_throttled_cmdlet_is_retried_with_backoff() -> None:
    """Fault throttled: Exchange's PowerShellMaxCmdlets budget refuses the first two invocations with the user
    load quota WSMan fault, before they run; the transport backs off and the third is answered."""
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    org = build_organization(inventory)
    fault = Fault("throttled", {"server": "mbx1", "cmdlet": "Get-MailboxServer", "count": 2, "seconds": 0.05})
    org.runtime_faults.append(fault)
    with LabServer(org) as server:
        transport = _transport((inventory, server))
        transport.throttle_retries, transport.backoff = 3, 0.01
        try:
            assert transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx1"))
            calls = [c for c in org.call_log if c[1] == "Get-MailboxServer"]
            assert len(calls) == 1 and org.fault_hits[id(fault)] == 2  # two refused unrun, the third answered
            transport.throttle_retries = 0
            org.fault_hits.clear()
            with pytest.raises(Throttled, match="user load quota of 1000 requests per 2 seconds") as exc:
                transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx1"))
            assert not isinstance(exc.value, ConnectionFailed)
            assert transport.transcript.invocations[-1].outcome == "throttled"
        finally:
            transport.close()
        assert not server.open_shells()


def test_https_with_the_labs_certificate_is_verified(tmp_path) -> None:
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    with LabServer(build_organization(inventory), https=True) as server:
        ca = server.certificate.write_ca_bundle(str(tmp_path / "lab-ca.pem"))
        s = inventory.server("mbx1")
        creds = {"mbx1": Credentials(server.credentials.username, server.credentials.password)}
        trusted = s.__class__(
            s.name,
            s.fqdn,
            s.site,
            s.dag,
            lab_connection(s.connection, server.exchange_uri("mbx1"), server.windows_uri("mbx1"), ca),
        )
        transport = PsrpTransport({"mbx1": trusted}, credentials=creds)
        try:
            assert server.exchange_uri("mbx1").startswith("https://")
            assert transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-ExchangeServer", Identity="mbx1"))
        finally:
            transport.close()
        untrusted = s.__class__(
            s.name, s.fqdn, s.site, s.dag, lab_connection(s.connection, server.exchange_uri("mbx1"), server.windows_uri("mbx1"))
        )
        transport = PsrpTransport({"mbx1": untrusted}, credentials=creds)
        with pytest.raises(ConnectionFailed, match="(?i)certificate"):
            transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-ExchangeServer", Identity="mbx1"))


def test_unknown_resource_uri_gets_a_wsman_fault(lab) -> None:
    _, server = lab
    wsman = _plain_wsman(server, "mbx1")
    with pytest.raises(WSManFaultError) as exc:
        wsman.get("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service")
    assert exc.value.code == 2150858811 and "not found in the WS-Management catalog" in exc.value.reason


def test_several_pools_and_pipelines_at_once(lab) -> None:
    _, server = lab
    names = ["mbx1", "mbx2", "mbx3", "mbx4"] * 2

    def work(name: str) -> int:
        with RunspacePool(_plain_wsman(server, name), configuration_name="Microsoft.Exchange") as pool:
            total = 0
            for _ in range(3):
                ps = PowerShell(pool)
                ps.add_cmdlet("Get-MailboxDatabaseCopyStatus").add_parameter("Server", name)
                total += len(ps.invoke())
            return total

    with ThreadPoolExecutor(8) as ex:
        counts = list(ex.map(work, names))
    assert counts == [9] * 8  # three copies on every server, three calls each


def test_winrs_cmd_shell_with_a_plain_pypsrp_client(lab) -> None:
    _, server = lab
    client = Client(
        "127.0.0.1",
        port=server.port("mbx3"),
        path="wsman",
        ssl=False,
        auth="basic",
        username=server.credentials.username,
        password=server.credentials.password,
        encryption="never",
    )
    stdout, stderr, rc = client.execute_cmd("sc.exe query MSExchangeTransport")
    assert rc == 0 and "STATE              : 4  RUNNING" in stdout
    stdout, stderr, rc = client.execute_cmd("ipconfig /all")
    assert rc == 1 and "is not recognized as an internal or external command" in stderr


def test_ntlm_with_pyspnego_as_the_acceptor() -> None:
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    with LabServer(build_organization(inventory), auth="ntlm") as server:
        s = inventory.server("mbx1")

        def transport(password: str) -> PsrpTransport:
            conn = lab_connection(s.connection, server.exchange_uri("mbx1"), server.windows_uri("mbx1"), auth="ntlm")
            return PsrpTransport(
                {"mbx1": s.__class__(s.name, s.fqdn, s.site, s.dag, conn)},
                credentials={"mbx1": Credentials(server.credentials.username, password)},
            )

        good = transport(server.credentials.password)
        try:
            assert good.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx1"))
            assert good.run("mbx1", Endpoint.WINDOWS, Command.of("Get-ClusterNode"))  # second connection
        finally:
            good.close()
        with pytest.raises(ConnectionFailed, match="authentication failed"):
            transport("wrong").run("mbx1", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx1"))
        store = server._ntlm_store
    assert store is not None and not Path(store.path).exists()  # the throwaway account file is gone


def test_the_wait_the_user_load_quota_names_is_honoured() -> None:
    """Fault throttled with a 1 s wait in its message: the retry comes no sooner, whatever the backoff."""
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    org = build_organization(inventory)
    org.runtime_faults.append(Fault("throttled", {"server": "mbx2", "cmdlet": "Get-MailboxServer", "count": 1, "seconds": 1}))
    with LabServer(org) as server:
        transport = _transport((inventory, server))
        transport.throttle_retries, transport.backoff = 1, 0.01
        try:
            started = time.monotonic()
            assert transport.run("mbx2", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx2"))
            assert time.monotonic() - started >= 1.0  # a lower bound the server set, not a performance figure
        finally:
            transport.close()
