"""The lab answers every request as Windows does, and never drops a connection for one it cannot process.

A client that sends something unexpected (a pipeline the shell does not have, PSRP bytes that do not
parse, an id that is not a GUID) gets a SOAP fault on the same keep-alive connection, and the next
request on that connection is served. What Windows answers comes from its recordings (pypsrp's
tests/responses: test_winrs_no_cmd_shell.yml, test_winrs_fail_poll_process.yml) and, for Exchange's
PowerShell plug-in, from a fault an Exchange 2019 server sent (dagcheck/lab/wirefaults.py names them).
"""

from __future__ import annotations

import base64
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import requests
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import RunspacePool
from pypsrp.shell import Process, WinRS
from pypsrp.wsman import NAMESPACES, WSMan

from dagcheck.inventory import load_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.server import LabServer
from tests.conftest import ROOT
from tests.processes import until

SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CMD_URI = SHELL + "/cmd"
EXCHANGE_URI = "http://schemas.microsoft.com/powershell/Microsoft.Exchange"
NS = {**NAMESPACES, "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"}


@pytest.fixture
def lab() -> Iterator[LabServer]:
    with LabServer(build_organization(load_inventory(ROOT / "inventory" / "lab.yml"))) as server:
        yield server


def _wsman(server: LabServer, path: str = "PowerShell") -> WSMan:
    return WSMan(
        "127.0.0.1",
        port=server.port("mbx1"),
        path=path,
        ssl=False,
        auth="basic",
        username=server.credentials.username,
        password=server.credentials.password,
        encryption="never",
    )


def _envelope(action: str, resource: str, shell_id: str | None, body: str, options: str = "") -> bytes:
    selectors = f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>' if shell_id else ""
    return (
        f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        f'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        f'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="{SHELL}">'
        f'<s:Header><a:Action s:mustUnderstand="true">{action}</a:Action>'
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f'<w:ResourceURI s:mustUnderstand="true">{resource}</w:ResourceURI>'
        f'<w:MaxEnvelopeSize s:mustUnderstand="true">153600</w:MaxEnvelopeSize>'
        f"<w:OperationTimeout>PT5S</w:OperationTimeout>{options}{selectors}</s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault(response: requests.Response) -> tuple[str, str, str]:
    """(Code, Subcode, WSManFault Code) of a SOAP fault answer."""
    root = ET.fromstring(response.content)
    fault = root.find("s:Body/s:Fault", NS)
    assert fault is not None, response.content[:300]
    return (
        fault.findtext("s:Code/s:Value", namespaces=NS),
        fault.findtext("s:Code/s:Subcode/s:Value", namespaces=NS),
        fault.find("s:Detail/f:WSManFault", NS).get("Code"),
    )


def test_requests_the_lab_cannot_process_get_soap_faults_on_the_same_connection(lab) -> None:
    """Each of these raised inside the lab and closed the connection: now each is a fault, and the same
    keep-alive connection goes on to serve a normal request."""
    with RunspacePool(_wsman(lab), configuration_name="Microsoft.Exchange") as pool:
        shell_id = pool.shell.id
        session = requests.Session()
        session.auth = (lab.credentials.username, lab.credentials.password)
        url = f"http://127.0.0.1:{lab.port('mbx1')}/PowerShell"
        garbage = base64.b64encode(b"\x00" * 21 + b"not a PSRP message").decode()
        unknown = str(uuid.uuid4()).upper()
        requests_to_refuse = {
            "PSRP bytes that do not parse, sent to the pool": _envelope(
                SHELL + "/Send", EXCHANGE_URI, shell_id, f'<rsp:Send><rsp:Stream Name="stdin">{garbage}</rsp:Stream></rsp:Send>'
            ),
            "input for a pipeline the shell does not have": _envelope(
                SHELL + "/Send",
                EXCHANGE_URI,
                shell_id,
                f'<rsp:Send><rsp:Stream Name="stdin" CommandId="{unknown}">{garbage}</rsp:Stream></rsp:Send>',
            ),
            "a Receive naming a CommandId that is not a GUID": _envelope(
                SHELL + "/Receive",
                EXCHANGE_URI,
                shell_id,
                '<rsp:Receive><rsp:DesiredStream CommandId="not-a-guid">stdout</rsp:DesiredStream></rsp:Receive>',
            ),
            "a Signal naming a CommandId that is not a GUID": _envelope(
                SHELL + "/Signal", EXCHANGE_URI, shell_id, '<rsp:Signal CommandId="zz"><rsp:Code>x</rsp:Code></rsp:Signal>'
            ),
            "a Command whose CommandId is not a GUID and whose arguments do not parse": _envelope(
                SHELL + "/Command",
                EXCHANGE_URI,
                shell_id,
                f'<rsp:CommandLine CommandId="nope"><rsp:Command>x</rsp:Command><rsp:Arguments>{garbage}</rsp:Arguments>'
                "</rsp:CommandLine>",
            ),
        }
        for what, message in requests_to_refuse.items():
            answer = session.post(url, data=message, headers={"Content-Type": "application/soap+xml;charset=UTF-8"})
            assert answer.status_code == 500, what
            code, subcode, _ = _fault(answer)
            assert code == "s:Sender" or subcode == "w:InternalError", what
            assert answer.headers.get("Connection", "").lower() != "close", what
        # The same connection (requests keeps it alive) still serves: the pool's own Receive times out normally.
        served = session.post(
            url,
            data=_envelope(
                SHELL + "/Receive",
                EXCHANGE_URI,
                shell_id,
                "<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>",
            ),
            headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
        )
        assert served.status_code in (200, 500)
        if served.status_code == 500:
            assert _fault(served)[1] == "w:TimedOut"


def test_a_psrp_error_is_answered_as_exchanges_powershell_plugin(lab) -> None:
    """s:Receiver, w:InternalError, Code 2152992672 and an f:ProviderFault naming the plug-in, as an
    Exchange 2019 server answered a request its plug-in refused."""
    with RunspacePool(_wsman(lab), configuration_name="Microsoft.Exchange") as pool:
        garbage = base64.b64encode(b"\x00" * 21 + b"not a PSRP message").decode()
        answer = requests.post(
            f"http://127.0.0.1:{lab.port('mbx1')}/PowerShell",
            auth=(lab.credentials.username, lab.credentials.password),
            data=_envelope(
                SHELL + "/Send",
                EXCHANGE_URI,
                pool.shell.id,
                f'<rsp:Send><rsp:Stream Name="stdin">{garbage}</rsp:Stream></rsp:Send>',
            ),
            headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
        )
    assert _fault(answer) == ("s:Receiver", "w:InternalError", "2152992672")
    provider = ET.fromstring(answer.content).find(".//f:ProviderFault", NS)
    assert provider is not None and provider.get("provider") == "PowerShellplugin"


def test_a_cmd_shell_receive_without_command_id_is_invalid_parameter_as_recorded(lab) -> None:
    with WinRS(_wsman(lab, "wsman")) as shell:
        receive = ET.Element(f"{{{NS['rsp']}}}Receive")
        ET.SubElement(receive, f"{{{NS['rsp']}}}DesiredStream").text = "stdout stderr"
        selectors = __import__("pypsrp.wsman", fromlist=["SelectorSet"]).SelectorSet()
        selectors.add_option("ShellId", shell.id)
        with pytest.raises(WSManFaultError) as exc:
            shell.wsman.receive(CMD_URI, receive, selector_set=selectors)
    assert exc.value.code == 87
    assert "The parameter is incorrect." in exc.value.reason


def test_a_missing_program_without_cmd_exe_is_internal_error_file_not_found(lab) -> None:
    with WinRS(_wsman(lab, "wsman")) as shell:
        with pytest.raises(WSManFaultError) as exc:
            Process(shell, "powershel.exe", ["Write-Host", "hi"], no_shell=True).invoke()
        assert exc.value.code == 2147942402
        assert "The system cannot find the file specified." in exc.value.reason
        # A program that is there runs without cmd.exe; through cmd.exe a missing one is cmd's own message.
        found = Process(shell, "sc.exe", ["query", "MSExchangeIS"], no_shell=True)
        found.invoke()
        assert found.rc == 0 and b"MSExchangeIS" in found.stdout
        missing = Process(shell, "powershel.exe", ["Write-Host"])
        missing.invoke()
        assert missing.rc == 1 and b"is not recognized" in missing.stderr


def test_the_clients_idle_timeout_is_honoured(lab) -> None:
    """A client that asks for its own IdleTimeOut in Create gets it (Windows honours it up to
    MaxIdleTimeoutms): it shows in the Create response, and the shell ends once idle that long, while a
    shell that asked for none keeps the server's two hours."""
    kept = WinRS(_wsman(lab, "wsman"))
    kept.open()
    short = WinRS(_wsman(lab, "wsman"), idle_time_out=1)
    short.open()
    try:
        assert {s.shell_id: lab.shell_idle_timeout(s) for s in lab.open_shells("mbx1")} == {kept.id: 7200.0, short.id: 1.0}

        def expired() -> bool:
            Process(kept, "sc.exe", ["query", "MSExchangeIS"]).invoke()  # any request makes the server look
            return short.id not in {s.shell_id for s in lab.open_shells("mbx1")}

        until("expiry of the shell idle past its own IdleTimeOut", expired, 40, poll=0.2)
        assert [s.shell_id for s in lab.open_shells("mbx1")] == [kept.id]
        with pytest.raises(WSManFaultError) as exc:
            Process(short, "sc.exe", ["query", "MSExchangeIS"]).invoke()
        assert exc.value.code == 2150858843
    finally:
        kept.close()
