"""The lab's WSMan, checked element by element with clients that know nothing of dagcheck: pypsrp's own
low-level API (pypsrp.wsman.WSMan, pypsrp.shell.WinRS, pypsrp.powershell.RunspacePool) and pywinrm.

What "right" means comes from recordings of real Windows traffic (pypsrp's tests/responses/*.yml) and
MS-WSMV; dagcheck/lab/wirefaults.py names the source of each fault and what is guessed.
"""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import requests
import winrm
from pypsrp.exceptions import WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.shell import Process, SignalCode, WinRS
from pypsrp.wsman import NAMESPACES, SelectorSet, WSMan

from dagcheck.inventory import load_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.server import LabServer
from dagcheck.lab.settings import Fault
from tests.conftest import ROOT

SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CMD_URI = SHELL_URI + "/cmd"
EXCHANGE_URI = "http://schemas.microsoft.com/powershell/Microsoft.Exchange"
NS = {**NAMESPACES, "wsen": "http://schemas.xmlsoap.org/ws/2004/09/enumeration"}
# pywinrm warns that it reads REQUESTS_CA_BUNDLE; the lab here is plain HTTP on loopback.
pytestmark = pytest.mark.filterwarnings("ignore:'pywinrm' will use an environment variable:DeprecationWarning")


@pytest.fixture
def lab():
    org = build_organization(load_inventory(ROOT / "inventory" / "lab.yml"))
    with LabServer(org) as server:
        yield org, server


def _wsman(server: LabServer, name: str = "mbx1", path: str = "PowerShell", **kw: Any) -> WSMan:
    return WSMan(
        "127.0.0.1",
        port=server.port(name),
        path=path,
        ssl=False,
        auth="basic",
        username=server.credentials.username,
        password=server.credentials.password,
        encryption="never",
        **kw,
    )


def _selectors(shell_id: str) -> SelectorSet:
    selectors = SelectorSet()
    selectors.add_option("ShellId", shell_id)
    return selectors


def _receive(wsman: WSMan, resource: str, shell_id: str, command_id: str, timeout: int | None = None) -> Any:
    receive = ET.Element(f"{{{NS['rsp']}}}Receive")
    ET.SubElement(receive, f"{{{NS['rsp']}}}DesiredStream", CommandId=command_id).text = "stdout"
    return wsman.receive(resource, receive, selector_set=_selectors(shell_id), timeout=timeout)


# ---- Create ------------------------------------------------------------------------------------


def test_create_response_has_rsp_shell_in_the_body_so_winrs_learns_its_id(lab) -> None:
    _, server = lab
    shell = WinRS(_wsman(server, path="wsman"))
    shell.open()
    try:
        assert shell.id and shell.id == shell.id.upper()  # pypsrp reads rsp:Shell/rsp:ShellId from the Body
        listed = server.open_shells("mbx1")
        assert [s.shell_id for s in listed] == [shell.id] and listed[0].owner == server.credentials.username
    finally:
        shell.close()
    assert not server.open_shells()


def test_create_response_matches_the_windows_recording(lab) -> None:
    _, server = lab
    wsman = _wsman(server, path="wsman")
    shell = ET.Element(f"{{{NS['rsp']}}}Shell")
    ET.SubElement(shell, f"{{{NS['rsp']}}}InputStreams").text = "stdin"
    ET.SubElement(shell, f"{{{NS['rsp']}}}OutputStreams").text = "stdout stderr"
    body = wsman.create(CMD_URI, shell)
    children = [c.tag.split("}")[1] for c in body]
    assert children == ["ResourceCreated", "Shell"]  # siblings, as test_winrs_standard.yml records
    info = body.find("rsp:Shell", NS)
    fields = [c.tag.split("}")[1] for c in info]
    assert fields == [
        "ShellId",
        "ResourceUri",
        "Owner",
        "ClientIP",
        "IdleTimeOut",
        "InputStreams",
        "OutputStreams",
        "ShellRunTime",
        "ShellInactivity",
    ]
    assert info.findtext("rsp:IdleTimeOut", namespaces=NS) == "PT7200.000S"
    selector = body.find("wst:ResourceCreated/wsa:ReferenceParameters/wsman:SelectorSet/wsman:Selector", NS)
    assert selector.text == info.findtext("rsp:ShellId", namespaces=NS)
    wsman.delete(CMD_URI, selector_set=_selectors(selector.text))
    assert not server.open_shells()


def _recording(wsman: WSMan) -> list[tuple[int, ET.Element]]:
    """Every response envelope the client receives: its size on the wire, and parsed."""
    seen: list[tuple[int, ET.Element]] = []
    send = wsman.transport.send

    def recording(message: bytes, **kw: Any) -> bytes:
        response = send(message, **kw)
        seen.append((len(response), ET.fromstring(response)))
        return response

    wsman.transport.send = recording  # type: ignore[method-assign]
    return seen


def test_powershell_create_and_pool_receive_match_the_windows_recording(lab) -> None:
    """test_psrp_open_runspace.yml: a PowerShell shell's rsp:Shell has its own fields; the pool's Receive
    answers rsp:Stream elements (one per PSRP payload) without a CommandState."""
    _, server = lab
    wsman = _wsman(server, path="wsman")
    seen = _recording(wsman)
    with RunspacePool(wsman, configuration_name="Microsoft.PowerShell"):
        pass
    info = seen[0][1].find("s:Body/rsp:Shell", NS)
    assert [c.tag.split("}")[1] for c in info] == [
        "ShellId",
        "ResourceUri",
        "Owner",
        "ClientIP",
        "ProcessId",
        "IdleTimeOut",
        "InputStreams",
        "OutputStreams",
        "MaxIdleTimeOut",
        "Locale",
        "DataLocale",
        "CompressionMode",
        "ProfileLoaded",
        "Encoding",
        "BufferMode",
        "State",
        "ShellRunTime",
        "ShellInactivity",
    ]
    assert info.findtext("rsp:InputStreams", namespaces=NS) == "stdin pr"
    receive = next(
        e.find("s:Body/rsp:ReceiveResponse", NS) for _, e in seen[1:] if e.find("s:Body/rsp:ReceiveResponse", NS) is not None
    )
    assert receive.find("rsp:CommandState", NS) is None
    assert all(st.get("CommandId") is None and st.get("Name") == "stdout" for st in receive.findall("rsp:Stream", NS))


def test_pywinrm_runs_a_command_through_create_command_receive_signal_delete(lab) -> None:
    _, server = lab
    session = winrm.Session(
        f"http://127.0.0.1:{server.port('mbx2')}/wsman",
        transport="basic",
        auth=(server.credentials.username, server.credentials.password),
        message_encryption="never",
    )
    result = session.run_cmd("sc.exe", ["query", "MSExchangeTransport"])
    assert result.status_code == 0 and b"STATE              : 4  RUNNING" in result.std_out
    assert not server.open_shells()  # pywinrm deletes its shell; the lab no longer holds it


# ---- InvalidSelectors ------------------------------------------------------------------------------


def test_unknown_shell_id_is_invalid_selectors_on_the_powershell_and_the_cmd_shell(lab) -> None:
    _, server = lab
    for path, resource in (("PowerShell", EXCHANGE_URI), ("wsman", CMD_URI)):
        bogus = str(uuid.uuid4()).upper()
        with pytest.raises(WSManFaultError) as exc:
            _receive(_wsman(server, path=path), resource, bogus, str(uuid.uuid4()).upper())
        assert exc.value.code == 2150858843
        assert f"ShellId {bogus} failed because the shell was not found on the server" in exc.value.reason


def test_unknown_command_id_is_invalid_selectors_on_both_shells(lab) -> None:
    _, server = lab
    message = "received a request to perform an operation on a command identifier that does not exist"
    with WinRS(_wsman(server, path="wsman")) as shell:
        with pytest.raises(WSManFaultError) as exc:
            _receive(shell.wsman, CMD_URI, shell.id, str(uuid.uuid4()).upper())
        assert exc.value.code == 2150858843 and message in exc.value.reason
    with RunspacePool(_wsman(server), configuration_name="Microsoft.Exchange") as pool:
        with pytest.raises(WSManFaultError) as exc:
            _receive(pool.shell.wsman, EXCHANGE_URI, pool.shell.id, str(uuid.uuid4()).upper())
        assert exc.value.code == 2150858843 and message in exc.value.reason  # not a TimedOut after a wait
    # pywinrm sees the same fault on its own cmd shell.
    protocol = winrm.Protocol(
        f"http://127.0.0.1:{server.port('mbx1')}/wsman",
        transport="basic",
        username=server.credentials.username,
        password=server.credentials.password,
        message_encryption="never",
    )
    shell_id = protocol.open_shell()
    try:
        with pytest.raises(winrm.exceptions.WSManFaultError) as fault:
            protocol.get_command_output(shell_id, str(uuid.uuid4()).upper())
        _assert_fault(fault.value, "s:Sender", "w:InvalidSelectors", 2150858843)
        with pytest.raises(winrm.exceptions.WSManFaultError) as fault:
            protocol.get_command_output(str(uuid.uuid4()).upper(), str(uuid.uuid4()).upper())
        _assert_fault(fault.value, "s:Sender", "w:InvalidSelectors", 2150858843)
        assert "request contained invalid selectors for the resource" in fault.value.reason
    finally:
        protocol.close_shell(shell_id)


def _assert_fault(fault: Any, code: str, subcode: str, wsman_code: int) -> None:
    """pywinrm keeps the SOAP fault's parts: HTTP 500, Code, Subcode, the WSManFault Code."""
    assert (fault.code, fault.fault_code, fault.fault_subcode, fault.wsman_fault_code) == (500, code, subcode, wsman_code)


# ---- long poll, Signal -----------------------------------------------------------------------------


def _start_slow(org: Any, server: LabServer, seconds: float) -> tuple[RunspacePool, PowerShell]:
    org.runtime_faults.append(Fault("slow_cmdlet", {"server": "mbx1", "cmdlet": "Get-Queue", "seconds": seconds}))
    pool = RunspacePool(_wsman(server, operation_timeout=20, read_timeout=30), configuration_name="Microsoft.Exchange")
    pool.open()
    ps = PowerShell(pool)
    ps.add_cmdlet("Get-Queue").add_parameter("Server", "mbx1")
    ps.begin_invoke()
    return pool, ps


def test_receive_is_held_for_the_operation_timeout_then_timed_out(lab) -> None:
    org, server = lab
    pool, ps = _start_slow(org, server, 20)
    try:
        _receive(pool.shell.wsman, EXCHANGE_URI, pool.shell.id, ps.id)  # the pipeline-state message of its start
        started = time.monotonic()
        with pytest.raises(WSManFaultError) as exc:
            _receive(pool.shell.wsman, EXCHANGE_URI, pool.shell.id, ps.id, timeout=7)  # OperationTimeout PT7S
        held = time.monotonic() - started
        assert exc.value.code == 2150858793
        assert held >= 6.9  # held for the request's OperationTimeout, not a fixed 5 s
        ps.stop()
    finally:
        pool.close()


def test_signal_terminate_stops_the_pipeline(lab) -> None:
    org, server = lab
    pool, ps = _start_slow(org, server, 30)
    try:
        pool.shell.signal(SignalCode.TERMINATE, ps.id)
        time.sleep(0.2)
        assert not [c for c in org.call_log if c[1] == "Get-Queue"]  # it never ran
        with pytest.raises(WSManFaultError) as exc:  # and the command is gone
            _receive(pool.shell.wsman, EXCHANGE_URI, pool.shell.id, ps.id, timeout=2)
        assert exc.value.code == 2150858843
        again = PowerShell(pool)  # the pool still serves the next pipeline
        again.add_cmdlet("Get-MailboxServer").add_parameter("Identity", "mbx1")
        assert again.invoke() and not again.had_errors
    finally:
        pool.close()


def test_cmd_shell_signal_terminate_ends_the_command(lab) -> None:
    _, server = lab
    with WinRS(_wsman(server, path="wsman")) as shell:
        process = Process(shell, "sc.exe query MSExchangeTransport")
        process.begin_invoke()
        process.signal(SignalCode.TERMINATE)
        with pytest.raises(WSManFaultError) as exc:
            _receive(shell.wsman, CMD_URI, shell.id, process.id)
        assert exc.value.code == 2150858843


# ---- MaxEnvelopeSize -------------------------------------------------------------------------------


def test_a_request_over_max_envelope_size_gets_http_413(lab) -> None:
    _, server = lab
    big = b"<s:Envelope>" + b" " * (501 * 1024) + b"</s:Envelope>"
    response = requests.post(
        f"http://127.0.0.1:{server.port('mbx1')}/wsman",
        data=big,
        auth=(server.credentials.username, server.credentials.password),
        headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
        timeout=10,
    )
    assert response.status_code == 413


def test_max_envelope_size_below_8192_is_an_encoding_limit_fault(lab) -> None:
    _, server = lab
    wsman = _wsman(server, path="wsman", max_envelope_size=8000)
    with pytest.raises(WSManFaultError) as exc:
        wsman.enumerate(SHELL_URI)
    assert exc.value.code == 2150858805


def test_receive_responses_fit_the_clients_max_envelope_size_as_psrp_fragments(lab) -> None:
    _, server = lab
    size = 10240
    wsman = _wsman(server, max_envelope_size=size)
    seen = _recording(wsman)
    with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-ServerComponentState").add_parameter("Identity", "mbx1")
        output = ps.invoke()
    assert len(output) == 34 and not ps.had_errors  # reassembled whole from many fragments
    sizes = [n for n, _ in seen]
    assert max(sizes) <= size and len(sizes) > 10, sizes


def test_a_client_sends_in_fragments_under_max_envelope_size(lab) -> None:
    """pypsrp fragments a large creation message itself; the lab reassembles what it receives."""
    _, server = lab
    with RunspacePool(_wsman(server, max_envelope_size=8192), configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-MailboxServer").add_parameter("Identity", "mbx1")
        assert ps.invoke()


# ---- Enumerate the shells -------------------------------------------------------------------------


def test_enumerate_the_shell_resource_lists_what_clients_left_open(lab) -> None:
    _, server = lab
    wsman = _wsman(server, path="wsman")
    left_open = WinRS(wsman)
    left_open.open()
    pool = RunspacePool(_wsman(server, path="wsman"), configuration_name="Microsoft.PowerShell")
    pool.open()
    try:
        body = wsman.enumerate(SHELL_URI)  # as Get-WSManInstance -ResourceURI shell -Enumerate
        context = body.findtext("wsen:EnumerateResponse/wsen:EnumerationContext", namespaces=NS)
        pull = ET.Element(f"{{{NS['wsen']}}}Pull")
        ET.SubElement(pull, f"{{{NS['wsen']}}}EnumerationContext").text = context
        items = wsman.pull(SHELL_URI, pull).find("wsen:PullResponse/wsen:Items", NS)
        listed = {s.findtext("rsp:ShellId", namespaces=NS): s for s in items.findall("rsp:Shell", NS)}
        assert set(listed) == {left_open.id, pool.shell.id}
        assert listed[left_open.id].findtext("rsp:ResourceUri", namespaces=NS) == CMD_URI
        assert listed[left_open.id].findtext("rsp:Owner", namespaces=NS) == server.credentials.username
        # optimized, as Get-WSManInstance -Enumerate asks: the items come in the EnumerateResponse itself
        enumerate_ = ET.Element(f"{{{NS['wsen']}}}Enumerate")
        ET.SubElement(enumerate_, f"{{{NS['wsman']}}}OptimizeEnumeration")
        optimized = wsman.enumerate(SHELL_URI, enumerate_).find("wsen:EnumerateResponse", NS)
        assert len(optimized.findall("wsman:Items/rsp:Shell", NS)) == 2
        assert optimized.find("wsman:EndOfSequence", NS) is not None
        # the Exchange endpoint's runspaces are not the WinRM service's: /wsman does not list them
        with RunspacePool(_wsman(server), configuration_name="Microsoft.Exchange"):
            items = wsman.pull(SHELL_URI, pull).find("wsen:PullResponse/wsen:Items", NS)
            assert len(items.findall("rsp:Shell", NS)) == 2
    finally:
        left_open.close()
        pool.close()
    assert not server.open_shells()


# ---- quotas and lost shells, as pypsrp sees them ------------------------------------------------------


def test_quota_faults_are_quota_limit_from_create(lab) -> None:
    org, server = lab
    org.runtime_faults += [
        Fault("runspace_quota", {"server": "mbx1", "count": 1}),
        Fault("shell_quota", {"server": "mbx1", "count": 1}),
    ]
    with RunspacePool(_wsman(server), configuration_name="Microsoft.Exchange"):
        with pytest.raises(WSManFaultError) as exc:
            RunspacePool(_wsman(server), configuration_name="Microsoft.Exchange").open()
        assert exc.value.code == 2150859173
        assert "This user is allowed a maximum of 1 concurrent shells, which has been exceeded" in exc.value.reason
    with WinRS(_wsman(server, path="wsman")):
        with pytest.raises(WSManFaultError) as exc:
            WinRS(_wsman(server, path="wsman")).open()
        assert "allowed a maximum number of 1 concurrent shells" in exc.value.reason
        protocol = winrm.Protocol(
            f"http://127.0.0.1:{server.port('mbx1')}/wsman",
            transport="basic",
            username=server.credentials.username,
            password=server.credentials.password,
            message_encryption="never",
        )
        with pytest.raises(winrm.exceptions.WSManFaultError) as fault:
            protocol.open_shell()
        _assert_fault(fault.value, "s:Receiver", "w:QuotaLimit", 2150859173)
    assert not server.open_shells()


def test_a_recycled_app_pool_loses_the_shell_as_windows_says(lab) -> None:
    _, server = lab
    pool = RunspacePool(_wsman(server), configuration_name="Microsoft.Exchange")
    pool.open()
    assert server.recycle_app_pool("mbx1") == 1
    ps = PowerShell(pool)
    ps.add_cmdlet("Get-MailboxServer").add_parameter("Identity", "mbx1")
    with pytest.raises(WSManFaultError) as exc:
        ps.invoke()
    assert exc.value.code == 2150858843 and "the shell was not found on the server" in exc.value.reason
    assert not server.open_shells()  # nothing left to delete


def test_a_rebooting_server_refuses_connections_then_serves_again(lab) -> None:
    _, server = lab
    server.reboot("mbx2", 0.5)
    with pytest.raises(requests.exceptions.ConnectionError, match="(?i)refused"):
        requests.post(f"http://127.0.0.1:{server.port('mbx2')}/wsman", data=b"", timeout=5)
    deadline = time.monotonic() + 10
    while server.is_down("mbx2") and time.monotonic() < deadline:
        time.sleep(0.05)
    with RunspacePool(_wsman(server, "mbx2"), configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-MailboxServer").add_parameter("Identity", "mbx2")
        assert ps.invoke()


def test_idle_timeout_fault_shows_in_create_and_expires_the_shell(lab) -> None:
    org, server = lab
    org.runtime_faults.append(Fault("idle_timeout", {"server": "mbx1", "seconds": 0.2}))
    shell = WinRS(_wsman(server, path="wsman"))
    shell.open()
    time.sleep(0.4)
    with pytest.raises(WSManFaultError) as exc:
        Process(shell, "sc.exe query MSExchangeTransport").invoke()
    assert exc.value.code == 2150858843


def test_an_http_413_reaches_pypsrp_as_a_transport_error(lab) -> None:
    _, server = lab
    wsman = _wsman(server, path="wsman")
    huge = ET.Element(f"{{{NS['rsp']}}}Shell")
    ET.SubElement(huge, f"{{{NS['rsp']}}}InputStreams").text = "stdin " * 100_000
    with pytest.raises(WinRMTransportError) as exc:
        wsman.create(CMD_URI, huge)
    assert exc.value.code == 413
