"""PSRP inside a PowerShell shell: psrpcore's ServerRunspacePool and ServerPipeline around the lab's cmdlets.

Pipelines run on worker threads so that a slow cmdlet makes Receive wait, as with a real server: a
Receive is held for the request's OperationTimeout and then answered w:TimedOut, as Windows does.
Exchange's PowerShellMaxCmdlets budget (the throttled fault) refuses a pipeline before it runs.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from psrpcore import PSRPPayload, ServerPipeline, ServerRunspacePool, StreamType
from psrpcore._events import CreatePipelineEvent
from psrpcore.types import ErrorCategory, ErrorCategoryInfo, NETException

from dagcheck.lab import cmdlets
from dagcheck.lab import wirefaults as wf
from dagcheck.lab.endpoint import LabEndpointServer
from dagcheck.lab.errors import LabCmdletError
from dagcheck.lab.shells import EXCHANGE_PATH, Shell
from dagcheck.lab.wire import ACTION, MAX_TIMEOUT, NS, command_id, payload_budget
from dagcheck.lab.wirefaults import WSManFault

log = logging.getLogger(__name__)

Answer = tuple[str, list[ET.Element]]  # the response's action and its Body's elements
CATEGORY_NUMBERS = {c.name: c for c in ErrorCategory}


def command(server: LabEndpointServer, shell: Shell, body: ET.Element | None) -> Answer:
    line = body.find("rsp:CommandLine", NS) if body is not None else None
    if line is None:
        raise WSManFault(2150858817, "w:SchemaValidationError", "Command needs a CommandLine.")
    cid = (line.get("CommandId") or str(uuid.uuid4())).upper()
    args = line.find("rsp:Arguments", NS)
    with shell.cond:
        ServerPipeline(shell.pool, uuid.UUID(cid))
        if args is not None and args.text:
            _feed(server, shell, base64.b64decode(args.text), uuid.UUID(cid))
    resp = ET.Element(f"{{{NS['rsp']}}}CommandResponse")
    ET.SubElement(resp, f"{{{NS['rsp']}}}CommandId").text = cid
    return ACTION + "CommandResponse", [resp]


def send_input(server: LabEndpointServer, shell: Shell, body: ET.Element | None) -> Answer:
    for stream in body.findall("rsp:Send/rsp:Stream", NS) if body is not None else []:
        pid = command_id(stream.get("CommandId"))
        with shell.cond:
            if pid is not None and pid not in shell.pool.pipeline_table:
                raise wf.command_not_found()  # input for a pipeline this shell does not have
            _feed(server, shell, base64.b64decode(stream.text or ""), pid)
    return ACTION + "SendResponse", [ET.Element(f"{{{NS['rsp']}}}SendResponse")]


def pipeline_threads_of(server: str) -> str:
    """What the names of a server's pipeline threads start with: a test can wait until a stopped pipeline's
    thread has ended."""
    return f"lab-pipeline-{server.lower()}-"


def _feed(server: LabEndpointServer, shell: Shell, data: bytes, pipeline_id: uuid.UUID | None) -> None:
    """Hand PSRP fragments to psrpcore; start any pipeline they complete. Caller holds shell.cond."""
    shell.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
    for event in drain_events(shell.pool):
        if isinstance(event, CreatePipelineEvent):
            pipeline = shell.pool.pipeline_table[event.pipeline_id]
            if shell.path == EXCHANGE_PATH:
                _throttle(server, shell, pipeline)
            threading.Thread(
                target=_run_pipeline,
                args=(server, shell, pipeline),
                name=f"{pipeline_threads_of(shell.server_name)}{event.pipeline_id}",  # what a test waits on
                daemon=True,
            ).start()
    shell.flush()


def _throttle(server: LabEndpointServer, shell: Shell, pipeline: ServerPipeline) -> None:
    """Exchange's PowerShellMaxCmdlets budget (the throttled fault): the first `count` invocations of
    the cmdlet are refused before they run, with the user load quota fault."""
    commands = _commands(pipeline)
    cmdlet = commands[0].command_text if commands else ""
    org = server.lab.org
    with org.lock:
        for f in org.faults_matching("throttled", shell.server_name, cmdlet):
            hits = org.fault_hits.get(id(f), 0)
            if hits < int(f.get("count", 1)):
                org.fault_hits[id(f)] = hits + 1
                shell.pool.pipeline_table.pop(pipeline.pipeline_id, None)
                # value: the quota (1000 requests per 2 seconds, as reported); seconds: the wait it names.
                raise wf.user_load_quota(int(f.get("value") or 1000), 2, int(float(f.get("seconds", 2)) * 1000))


def _run_pipeline(server: LabEndpointServer, shell: Shell, pipeline: ServerPipeline) -> None:
    lab = server.lab
    commands = _commands(pipeline)
    with shell.cond:
        pipeline.start()
        shell.flush()
    try:
        if any(c.is_script for c in commands):
            raise LabCmdletError(
                "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode.",
                "ParserError",
                "ScriptsNotAllowed",
                "System.Management.Automation.PSInvalidOperationException",
            )
        pipe = [(c.command_text, {str(n): v for n, v in c.parameters}) for c in commands]
        if any(n in (None, "None") for c in commands for n, _ in c.parameters):
            raise LabCmdletError(
                "Positional parameters are not accepted by this lab endpoint.",
                "InvalidArgument",
                "PositionalParameterNotFound",
                "System.Management.Automation.ParameterBindingException",
            )
        delay = cmdlets.slow_seconds(lab.org, shell.server_name, pipe[0][0]) + lab.latency_for("cmdlet", pipe[0][0])
        if delay:
            with shell.cond:  # a Signal terminate ends the wait, as stopping a pipeline does
                shell.cond.wait_for(lambda: pipeline.pipeline_id in shell.stopped, timeout=delay)
        if pipeline.pipeline_id in shell.stopped:
            return
        output = cmdlets.run_pipeline(lab.org, shell.endpoint, shell.server_name, pipe)
        with shell.cond:
            if pipeline.pipeline_id in shell.stopped:
                return
            for obj in output:
                pipeline.write_output(obj)
            shell.flush()
    except LabCmdletError as exc:
        with shell.cond:
            if pipeline.pipeline_id not in shell.stopped:
                _write_error(pipeline, exc)
                shell.flush()
    except Exception as exc:  # a lab bug must still answer like a server, not hang the client
        log.exception("lab cmdlet crashed")
        with shell.cond:
            if pipeline.pipeline_id not in shell.stopped:
                _write_error(pipeline, LabCmdletError(f"Lab internal error: {exc}", "NotSpecified", "LabInternalError"))
                shell.flush()
    with shell.cond:
        if pipeline.pipeline_id in shell.stopped:
            return
        pipeline.complete()
        shell.done.add(pipeline.pipeline_id)
        shell.flush()


def receive(server: LabEndpointServer, shell: Shell, body: ET.Element | None, timeout: float, max_envelope: int) -> Answer:
    """Held until there is output or the request's OperationTimeout passes (then w:TimedOut, as
    Windows answers); at most as many whole PSRP fragments as the client's MaxEnvelopeSize takes."""
    desired = body.find("rsp:Receive/rsp:DesiredStream", NS) if body is not None else None
    pid_text = desired.get("CommandId") if desired is not None else None
    pid = command_id(pid_text)
    if pid is not None and pid not in shell.pool.pipeline_table and pid not in shell.done:
        raise wf.command_not_found()
    wait = min(timeout, MAX_TIMEOUT) if timeout else server.lab.receive_wait
    budget = payload_budget(max_envelope)
    with shell.cond:
        shell.receiving += 1
        try:
            shell.cond.wait_for(lambda: bool(shell.outbox.get(pid)) or server.shells.get(shell.shell_id) is None, timeout=wait)
        finally:
            shell.receiving -= 1
        data = shell.take(pid, budget)
        finished = pid is not None and pid in shell.done and not shell.outbox.get(pid)
    shell.last_used = time.monotonic()
    if not data:
        if server.shells.get(shell.shell_id) is None:  # recycled or expired while held
            raise wf.shell_not_found(shell.shell_id)
        raise wf.timed_out()
    resp = ET.Element(f"{{{NS['rsp']}}}ReceiveResponse")
    attrs = {"Name": "stdout", **({"CommandId": pid_text} if pid_text else {})}
    for chunk in data:
        ET.SubElement(resp, f"{{{NS['rsp']}}}Stream", attrs).text = base64.b64encode(chunk).decode()
    if pid_text:  # the pool's own Receive carries no CommandState (as recorded from Windows)
        state = ACTION + ("CommandState/Done" if finished else "CommandState/Running")
        cs = ET.SubElement(resp, f"{{{NS['rsp']}}}CommandState", {"CommandId": pid_text, "State": state})
        if finished:
            ET.SubElement(cs, f"{{{NS['rsp']}}}ExitCode").text = "0"
    return ACTION + "ReceiveResponse", [resp]


def signal(shell: Shell, body: ET.Element | None) -> Answer:
    """Signal terminate stops a running pipeline (PowerShell answers it Stopped) and frees it."""
    sig = body.find("rsp:Signal", NS) if body is not None else None
    pid = sig.get("CommandId") if sig is not None else None
    if pid:
        pipeline_id = command_id(pid)
        assert pipeline_id is not None  # a CommandId that is no GUID was refused by command_id
        with shell.cond:
            pipeline = shell.pool.pipeline_table.get(pipeline_id)
            if pipeline is None and pipeline_id not in shell.done:
                raise wf.command_not_found()
            if pipeline is not None and pipeline_id not in shell.done:
                shell.stopped.add(pipeline_id)
                try:
                    pipeline.stop()  # PipelineState Stopped with PipelineStoppedException, as PowerShell
                except Exception as exc:  # not yet started: nothing to stop
                    log.debug("stopping %s: %s", pid, exc)
            if pipeline is not None:
                try:
                    pipeline.close()
                except Exception as exc:
                    log.debug("closing %s: %s", pid, exc)
            shell.outbox.pop(pipeline_id, None)
            shell.done.discard(pipeline_id)
            shell.pool.data_to_send()  # what stop() queued is for a client that no longer listens
            shell.cond.notify_all()
    return ACTION + "SignalResponse", [ET.Element(f"{{{NS['rsp']}}}SignalResponse")]


def _commands(pipeline: ServerPipeline) -> list[Any]:
    """The pipeline's commands; its metadata came with the CreatePipeline message that made it."""
    metadata = pipeline.metadata
    assert metadata is not None
    return list(metadata.commands)


def drain_events(pool: ServerRunspacePool) -> list[Any]:
    events = []
    while (event := pool.next_event()) is not None:
        events.append(event)
    return events


def _write_error(pipeline: ServerPipeline, exc: LabCmdletError) -> None:
    category = CATEGORY_NUMBERS.get(exc.category, ErrorCategory.NotSpecified)
    exception = NETException(Message=exc.message)
    # The exception's own .NET type heads the hierarchy, as PowerShell serializes it.
    exception.PSObject.type_names[:] = [exc.exception_type, "System.Exception", "System.Object"]
    pipeline.write_error(
        exception,
        ErrorCategoryInfo(
            Category=category,
            Activity=exc.activity,
            Reason=exc.exception_type.rsplit(".", 1)[-1],
            TargetName=exc.target or "",
            TargetType="String" if exc.target else "",
        ),
        target_object=exc.target,
        fully_qualified_error_id=exc.error_id,
    )
