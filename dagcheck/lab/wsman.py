"""The WSMan actions of one request: Create, Delete and Enumerate of shells, and the routing of Command,
Send, Receive and Signal to PSRP (dagcheck.lab.psrp) or WinRS (dagcheck.lab.winrs_shell).

Shells end as on real servers (dagcheck.lab.shells): a Command on /PowerShell may find the application
pool recycled; quotas are counted per user at Create (Exchange's PowerShellMaxConcurrency on
/PowerShell, WinRM's MaxShellsPerUser on /wsman).
"""

from __future__ import annotations

import base64
import os
import time
import uuid
import xml.etree.ElementTree as ET

from psrpcore import PSRPPayload, ServerRunspacePool, StreamType

from dagcheck.lab import budget, psrp, winrs_shell
from dagcheck.lab import wirefaults as wf
from dagcheck.lab.endpoint import Request
from dagcheck.lab.shells import EXCHANGE_PATH, AnyShell, CmdShell, Shell
from dagcheck.lab.wire import (
    ACTION,
    CMD,
    ENUMERATION,
    MIN_ENVELOPE,
    NS,
    PATHS,
    RESOURCE_SHELL,
    TRANSFER,
    duration,
    idle_timeout,
    option,
    payload_budget,
    selector,
    text,
    xs_duration,
)
from dagcheck.lab.wirefaults import WSManFault

Answer = tuple[str, list[ET.Element]]  # the response's action and its Body's elements


def dispatch(req: Request, envelope: ET.Element, path: str) -> Answer:
    action = text(envelope, "s:Header/wsa:Action") or ""
    resource = text(envelope, "s:Header/wsman:ResourceURI") or ""
    body = envelope.find("s:Body", NS)
    max_envelope = int(text(envelope, "s:Header/wsman:MaxEnvelopeSize") or 153600)
    if max_envelope < MIN_ENVELOPE:
        raise wf.envelope_too_small(max_envelope)
    if resource.lower() == RESOURCE_SHELL.lower() and action in (ENUMERATION + "Enumerate", ENUMERATION + "Pull"):
        return _enumerate_shells(req, envelope, path, action)
    endpoint = next((e for r, e in PATHS[path].items() if r.lower() == resource.lower()), None)
    if endpoint is None:
        raise WSManFault(
            2150858811,
            "w:InvalidResourceURI",
            f"The WS-Management service cannot process the request. The resource URI ({resource}) "
            "was not found in the WS-Management catalog.",
        )
    if action == TRANSFER + "Create":
        if endpoint == CMD:
            return _create_cmd(req, body, resource, path)
        return _create(req, body, endpoint, resource, path, max_envelope)
    server = req.endpoint
    if (
        action == ACTION + "Command"
        and path == EXCHANGE_PATH
        and server.lab.fault_fires("app_pool_recycle", server.sim_server) is not None
    ):
        server.lab.recycle_app_pool(server.sim_server)  # before this request finds its shell
    shell_id = selector(envelope, "ShellId")
    shell = server.shells.get(shell_id)
    if shell is None or shell.path != path:
        raise wf.shell_not_found(shell_id)
    if action == TRANSFER + "Delete":
        server.shells.remove(shell.shell_id)
        if isinstance(shell, Shell):  # closing the runspace pool stops what still runs in it
            with shell.cond:
                shell.stopped.update(shell.pool.pipeline_table)
                shell.cond.notify_all()
        return TRANSFER + "DeleteResponse", []
    if isinstance(shell, CmdShell) and action in (
        ACTION + "Command",
        ACTION + "Receive",
        ACTION + "Signal",
        ACTION + "Send",
    ):
        return winrs_shell.answer(
            server,
            shell,
            action,
            body,
            duration(text(envelope, "s:Header/wsman:OperationTimeout")),
            skip_cmd_shell=option(envelope, "WINRS_SKIP_CMD_SHELL"),
        )
    if isinstance(shell, CmdShell):
        raise WSManFault(2150858770, "wsa:ActionNotSupported", f"The action {action} is not supported by the service.")
    if action == ACTION + "Command":
        return psrp.command(server, shell, body)
    if action == ACTION + "Send":
        return psrp.send_input(server, shell, body)
    if action == ACTION + "Receive":
        timeout = duration(text(envelope, "s:Header/wsman:OperationTimeout"))
        return psrp.receive(server, shell, body, timeout, max_envelope)
    if action == ACTION + "Signal":
        return psrp.signal(shell, body)
    raise WSManFault(2150858770, "wsa:ActionNotSupported", f"The action {action} is not supported by the service.")


def _create(req: Request, body: ET.Element | None, endpoint: str, resource: str, path: str, max_envelope: int) -> Answer:
    shell_el = body.find("rsp:Shell", NS) if body is not None else None
    creation = shell_el.find("pwsh:creationXml", NS) if shell_el is not None else None
    if shell_el is None or creation is None or not creation.text:
        raise WSManFault(2150858817, "w:SchemaValidationError", "A PowerShell shell needs creationXml.")
    shell_id = (shell_el.get("ShellId") or str(uuid.uuid4())).upper()
    lab, server = req.endpoint.lab, req.endpoint.sim_server
    # Exchange's runspace budget (lab.budget): the shell is created, its pool opens Broken.
    left = budget.seconds_left(lab.org.faults_matching(budget.KIND, server)) if path == EXCHANGE_PATH else None
    pool = ServerRunspacePool() if left is None else budget.RefusingPool(left)
    shell = Shell(
        shell_id,
        endpoint,
        server,
        pool,
        owner=req.owner,
        path=path,
        resource=resource,
        max_fragment=payload_budget(max_envelope),
        idle_timeout=idle_timeout(shell_el),
    )
    refuse = wf.powershell_max_concurrency if path == EXCHANGE_PATH else wf.max_shells_per_user
    req.endpoint.shells.add(shell, lab.shell_limit(server, path), refuse)
    with shell.cond:
        pool.receive_data(PSRPPayload(base64.b64decode(creation.text), StreamType.default, None))
        psrp.drain_events(pool)
        shell.flush()
    # Opening a runspace (loading the Exchange snap-in, RBAC) is the slow part of a real connection.
    if (spend := lab.latency_for("runspace_open")) > 0:
        time.sleep(spend)
    return TRANSFER + "CreateResponse", _resource_created(req, shell, "stdin pr", "stdout")


def _create_cmd(req: Request, body: ET.Element | None, resource: str, path: str) -> Answer:
    """A WinRS cmd shell (what pypsrp's WinRS and testinfra-style command runners open)."""
    if body is None or body.find("rsp:Shell", NS) is None:
        raise WSManFault(2150858817, "w:SchemaValidationError", "Create needs a Shell element.")
    shell = CmdShell(
        str(uuid.uuid4()).upper(),
        req.endpoint.sim_server,
        owner=req.owner,
        path=path,
        resource=resource,
        idle_timeout=idle_timeout(body.find("rsp:Shell", NS)),
    )
    lab = req.endpoint.lab
    req.endpoint.shells.add(shell, lab.shell_limit(shell.server_name, path), wf.max_shells_per_user)
    return TRANSFER + "CreateResponse", _resource_created(req, shell, "stdin", "stdout stderr")


def _resource_created(req: Request, shell: AnyShell, inputs: str, outputs: str) -> list[ET.Element]:
    """As recorded from Windows: x:ResourceCreated (the EPR), then rsp:Shell beside it in the Body."""
    resp = ET.Element(f"{{{NS['wst']}}}ResourceCreated")
    ET.SubElement(resp, f"{{{NS['wsa']}}}Address").text = f"http://127.0.0.1{req.url}"
    ref = ET.SubElement(resp, f"{{{NS['wsa']}}}ReferenceParameters")
    ET.SubElement(ref, f"{{{NS['wsman']}}}ResourceURI").text = shell.resource
    selectors = ET.SubElement(ref, f"{{{NS['wsman']}}}SelectorSet")
    ET.SubElement(selectors, f"{{{NS['wsman']}}}Selector", {"Name": "ShellId"}).text = shell.shell_id
    return [resp, _shell_element(req, shell, inputs, outputs)]


def _shell_element(req: Request, shell: AnyShell, inputs: str, outputs: str) -> ET.Element:
    """rsp:Shell with the fields, in the order, of the recorded Windows responses: a PowerShell shell
    (test_psrp_open_runspace.yml) has more than a cmd shell (test_winrs_standard.yml)."""
    info = ET.Element(f"{{{NS['rsp']}}}Shell")
    idle = f"PT{req.endpoint.lab.shell_idle_timeout(shell):.3f}S"
    fields = [("ShellId", shell.shell_id), ("ResourceUri", shell.resource), ("Owner", shell.owner), ("ClientIP", "127.0.0.1")]
    if isinstance(shell, Shell):
        fields += [
            ("ProcessId", str(os.getpid())),
            ("IdleTimeOut", idle),
            ("InputStreams", inputs),
            ("OutputStreams", outputs),
            ("MaxIdleTimeOut", "PT2147483.647S"),
            ("Locale", "en-US"),
            ("DataLocale", "en-US"),
            ("CompressionMode", "NoCompression"),
            ("ProfileLoaded", "Yes"),
            ("Encoding", "UTF8"),
            ("BufferMode", "Block"),
            ("State", "Connected"),
        ]
    else:
        fields += [("IdleTimeOut", idle), ("InputStreams", inputs), ("OutputStreams", outputs)]
    fields += [
        ("ShellRunTime", xs_duration(time.time() - shell.created)),
        ("ShellInactivity", xs_duration(time.monotonic() - shell.last_used)),
    ]
    for tag, value in fields:
        ET.SubElement(info, f"{{{NS['rsp']}}}{tag}").text = value
    return info


def _enumerate_shells(req: Request, envelope: ET.Element, path: str, action: str) -> Answer:
    """Get-WSManInstance -ResourceURI shell -Enumerate (or winrm enumerate): the open shells on this
    endpoint, owner and idle time included, so anyone can see what a client left open. With
    wsman:OptimizeEnumeration the items come in the EnumerateResponse, as Windows does; a Pull on
    the context gives them otherwise. The lab lists every user's shells (guessed: Windows shows a
    non-administrator only their own)."""
    shells = [
        _shell_element(req, s, *(("stdin", "stdout stderr") if isinstance(s, CmdShell) else ("stdin pr", "stdout")))
        for s in req.endpoint.shells.list(path=path)
    ]
    if action == ENUMERATION + "Pull":  # WS-Enumeration's own Items and EndOfSequence
        resp = ET.Element(f"{{{NS['wsen']}}}PullResponse")
        ET.SubElement(resp, f"{{{NS['wsen']}}}Items").extend(shells)
        ET.SubElement(resp, f"{{{NS['wsen']}}}EndOfSequence")
        return ENUMERATION + "PullResponse", [resp]
    resp = ET.Element(f"{{{NS['wsen']}}}EnumerateResponse")
    ET.SubElement(resp, f"{{{NS['wsen']}}}EnumerationContext").text = f"uuid:{uuid.uuid4()}"
    if envelope.find("s:Body/wsen:Enumerate/wsman:OptimizeEnumeration", NS) is not None:  # DSP0226 8.2.3
        ET.SubElement(resp, f"{{{NS['wsman']}}}Items").extend(shells)
        ET.SubElement(resp, f"{{{NS['wsman']}}}EndOfSequence")
    return ENUMERATION + "EnumerateResponse", [resp]
