"""The lab's WSMan vocabulary: namespaces, actions, resource URIs and the small readers and writers of SOAP.

Shared by the request handler (dagcheck.lab.handler), the WSMan actions (dagcheck.lab.wsman), PSRP
(dagcheck.lab.psrp) and WinRS (dagcheck.lab.winrs_shell); it knows no state and no request.
"""

from __future__ import annotations

import socket
import uuid
import xml.etree.ElementTree as ET

from dagcheck.lab import wirefaults as wf
from dagcheck.lab.cmdlets.base import EXCHANGE, WINDOWS
from dagcheck.lab.shells import EXCHANGE_PATH, WSMAN_PATH
from dagcheck.lab.wirefaults import WSManFault

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "wsen": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

ACTION = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
RESOURCE_EXCHANGE = "http://schemas.microsoft.com/powershell/Microsoft.Exchange"
RESOURCE_WINDOWS = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
RESOURCE_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"  # Enumerate: the open shells
ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/"
CMD = "cmd"
# Per HTTP path, the resource URIs served there and what answers them.
PATHS = {
    EXCHANGE_PATH: {RESOURCE_EXCHANGE: EXCHANGE},
    WSMAN_PATH: {RESOURCE_WINDOWS: WINDOWS, RESOURCE_CMD: CMD},
}
TIMED_OUT = wf.TIMED_OUT
SIGNAL_TERMINATE = ACTION + "signal/terminate"
MAX_TIMEOUT = 60.0  # winrm/config MaxTimeoutms 60000: no Receive is held longer
MAX_IDLE_TIMEOUT = 2147483.647  # rsp:MaxIdleTimeOut of the recorded Create responses
MIN_ENVELOPE = 8192
ENVELOPE_OVERHEAD = 2048  # room for the SOAP headers and the ReceiveResponse around a stream
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"

PATH_PLUGINS = {EXCHANGE_PATH: wf.EXCHANGE_PLUGIN, WSMAN_PATH: wf.WINDOWS_POWERSHELL_PLUGIN}


def plugin(envelope: ET.Element, path: str) -> tuple[str, str]:
    """The WSMan plug-in that would answer this request on Windows: Exchange's PowerShell on /PowerShell,
    the cmd shell or Windows PowerShell on /wsman."""
    resource = (text(envelope, "s:Header/wsman:ResourceURI") or "").lower()
    if path == WSMAN_PATH and resource == RESOURCE_CMD.lower():
        return wf.CMD_PLUGIN
    return PATH_PLUGINS.get(path, wf.WINDOWS_POWERSHELL_PLUGIN)


def command_id(value: str | None) -> uuid.UUID | None:
    """A CommandId selector as a UUID; one that is not a GUID names no command of this shell (Windows answers
    such an id as it answers an unknown one: guessed)."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise wf.command_not_found() from None


def text(root: ET.Element, path: str) -> str | None:
    el = root.find(path, NS)
    return el.text if el is not None else None


def idle_timeout(shell_el: ET.Element | None) -> float | None:
    """The rsp:IdleTimeOut a client put in its Create (PT<seconds>S), or None when it asked for none."""
    value = text(shell_el, "rsp:IdleTimeOut") if shell_el is not None else None
    seconds = duration(value)
    return seconds if seconds > 0 else None


def option(envelope: ET.Element, name: str) -> bool:
    """A boolean wsman:Option of the request's OptionSet (WINRS_SKIP_CMD_SHELL, WINRS_CONSOLEMODE_STDIN...)."""
    for opt in envelope.findall("s:Header/wsman:OptionSet/wsman:Option", NS):
        if opt.get("Name") == name:
            return (opt.text or "").strip().lower() == "true"
    return False


def selector(envelope: ET.Element, name: str) -> str | None:
    for sel in envelope.findall("s:Header/wsman:SelectorSet/wsman:Selector", NS):
        if sel.get("Name") == name:
            return sel.text
    return None


def duration(value: str | None) -> float:
    if not value or not value.startswith("PT") or not value.endswith("S"):
        return 0.0
    try:
        return float(value[2:-1])
    except ValueError:
        return 0.0


def payload_budget(max_envelope: int) -> int:
    """Bytes of PSRP data one response can carry: base64 inside what MaxEnvelopeSize leaves after the
    SOAP around it."""
    return max(64, (max_envelope - ENVELOPE_OVERHEAD) * 3 // 4)


def xs_duration(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"P{s // 86400}DT{s % 86400 // 3600}H{s % 3600 // 60}M{s % 60}S"


def reset(conn: socket.socket) -> None:
    """Close a client connection with a TCP reset (SO_LINGER 0), as a dying server does."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


def envelope(action: str, relates_to: str, body_els: list[ET.Element]) -> bytes:
    env = ET.Element(f"{{{NS['s']}}}Envelope")
    header = ET.SubElement(env, f"{{{NS['s']}}}Header")
    ET.SubElement(header, f"{{{NS['wsa']}}}Action").text = action
    ET.SubElement(header, f"{{{NS['wsa']}}}MessageID").text = f"uuid:{uuid.uuid4()}"
    ET.SubElement(header, f"{{{NS['wsa']}}}RelatesTo").text = relates_to
    ET.SubElement(header, f"{{{NS['wsa']}}}To").text = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
    body = ET.SubElement(env, f"{{{NS['s']}}}Body")
    body.extend(body_els)
    return ET.tostring(env, encoding="utf-8", xml_declaration=False)


def fault_envelope(message_id: str | None, fault: WSManFault, machine: str) -> bytes:
    """A SOAP fault as Windows writes it: Code/Subcode, Reason, and the WSManFault detail naming the machine."""
    body = ET.Element(f"{{{NS['s']}}}Fault")
    code = ET.SubElement(body, f"{{{NS['s']}}}Code")
    sender = fault.sender or fault.status != 500
    ET.SubElement(code, f"{{{NS['s']}}}Value").text = "s:Sender" if sender else "s:Receiver"
    sub = ET.SubElement(code, f"{{{NS['s']}}}Subcode")
    ET.SubElement(sub, f"{{{NS['s']}}}Value").text = fault.subcode
    reason = ET.SubElement(body, f"{{{NS['s']}}}Reason")
    ET.SubElement(reason, f"{{{NS['s']}}}Text", {"xml:lang": "en-US"}).text = (
        fault.message if fault.reason is None else fault.reason
    )
    detail = ET.SubElement(body, f"{{{NS['s']}}}Detail")
    if fault.detail:
        ET.SubElement(detail, f"{{{NS['wsman']}}}FaultDetail").text = fault.detail
    wsf = ET.SubElement(detail, f"{{{NS['wsmanfault']}}}WSManFault", {"Code": str(fault.code), "Machine": machine})
    message = ET.SubElement(wsf, f"{{{NS['wsmanfault']}}}Message")
    if fault.provider is None:
        message.text = fault.message
    else:  # Windows wraps a plug-in's message in f:ProviderFault naming the plug-in and its DLL
        provider, dll = fault.provider
        ET.SubElement(message, f"{{{NS['wsmanfault']}}}ProviderFault", {"provider": provider, "path": dll}).text = fault.message
    return envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", message_id or "", [body])
