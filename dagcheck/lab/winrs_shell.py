"""WinRS over WSMan: a cmd shell's Command, Receive, Signal and Send, around the commands of dagcheck.lab.winrs.

A command runs at once when it arrives; its exit code and output wait for the Receive, which a
slow_cmdlet fault naming the program (a hung sc.exe) holds for its OperationTimeout.
"""

from __future__ import annotations

import base64
import time
import uuid
import xml.etree.ElementTree as ET

from dagcheck.lab import cmdlets, winrs
from dagcheck.lab import wirefaults as wf
from dagcheck.lab.endpoint import LabEndpointServer
from dagcheck.lab.shells import CmdShell
from dagcheck.lab.wire import ACTION, MAX_TIMEOUT, NS, text
from dagcheck.lab.wirefaults import WSManFault

Answer = tuple[str, list[ET.Element]]  # the response's action and its Body's elements


def answer(
    server: LabEndpointServer,
    shell: CmdShell,
    action: str,
    body: ET.Element | None,
    timeout: float = 0.0,
    skip_cmd_shell: bool = False,
) -> Answer:
    if action == ACTION + "Send":  # the lab's commands read no input
        return ACTION + "SendResponse", [ET.Element(f"{{{NS['rsp']}}}SendResponse")]
    if action == ACTION + "Command":
        return _command(server, shell, body, skip_cmd_shell)
    if action == ACTION + "Signal":
        signal = body.find("rsp:Signal", NS) if body is not None else None
        command_id = (signal.get("CommandId") or "").upper() if signal is not None else ""
        if command_id and command_id not in shell.results:
            raise wf.command_not_found()
        shell.results.pop(command_id, None)
        shell.ready_at.pop(command_id, None)
        return ACTION + "SignalResponse", [ET.Element(f"{{{NS['rsp']}}}SignalResponse")]
    return _receive(server, shell, body, timeout)


def _command(server: LabEndpointServer, shell: CmdShell, body: ET.Element | None, skip_cmd_shell: bool) -> Answer:
    line = body.find("rsp:CommandLine", NS) if body is not None else None
    if line is None:
        raise WSManFault(2150858817, "w:SchemaValidationError", "Command needs a CommandLine.")
    command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
    words = [text(line, "rsp:Command") or ""] + [a.text or "" for a in line.findall("rsp:Arguments", NS)]
    if (spend := server.lab.latency_for("winrs")) > 0:
        time.sleep(spend)  # this request's own thread; other requests go on
    command_line = " ".join(w for w in words if w)
    if skip_cmd_shell and not winrs.exists(words[0]):
        # No cmd.exe to say "is not recognized": CreateProcess itself fails, and WinRS answers a fault.
        raise wf.program_not_found()
    shell.results[command_id] = winrs.run(server.lab.org, shell.server_name, command_line)
    # slow_cmdlet naming the program (cmdlet: sc): its result shows only after `seconds` (a hung sc.exe)
    delay = cmdlets.slow_seconds(server.lab.org, shell.server_name, winrs.program(command_line))
    if delay:
        shell.ready_at[command_id] = time.monotonic() + delay
    resp = ET.Element(f"{{{NS['rsp']}}}CommandResponse")
    ET.SubElement(resp, f"{{{NS['rsp']}}}CommandId").text = command_id
    return ACTION + "CommandResponse", [resp]


def _receive(server: LabEndpointServer, shell: CmdShell, body: ET.Element | None, timeout: float) -> Answer:
    desired = body.find("rsp:Receive/rsp:DesiredStream", NS) if body is not None else None
    command_id = (desired.get("CommandId") or "").upper() if desired is not None else ""
    if not command_id:
        raise wf.invalid_parameter()  # as Windows answers a cmd shell's Receive that names no command
    if command_id not in shell.results:
        raise wf.command_not_found()
    if (left := shell.ready_at.get(command_id, 0.0) - time.monotonic()) > 0:
        # Still running: held for the request's OperationTimeout, then w:TimedOut (no output yet), as Windows
        # answers a Receive on a command that has not finished (guessed: no partial stdout for sc.exe).
        wait = min(timeout, MAX_TIMEOUT) if timeout else server.lab.receive_wait
        time.sleep(min(left, wait))
        if shell.ready_at.get(command_id, 0.0) > time.monotonic():
            raise wf.timed_out()
        if command_id not in shell.results:  # terminated while held
            raise wf.command_not_found()
    rc, out, err = shell.results[command_id]
    resp = ET.Element(f"{{{NS['rsp']}}}ReceiveResponse")
    for name, data in (("stdout", out), ("stderr", err)):
        stream = ET.SubElement(resp, f"{{{NS['rsp']}}}Stream", {"Name": name, "CommandId": command_id, "End": "true"})
        stream.text = base64.b64encode(data.encode("utf-8")).decode() if data else None
    state = ET.SubElement(resp, f"{{{NS['rsp']}}}CommandState", {"CommandId": command_id, "State": ACTION + "CommandState/Done"})
    ET.SubElement(state, f"{{{NS['rsp']}}}ExitCode").text = str(rc)
    return ACTION + "ReceiveResponse", [resp]
