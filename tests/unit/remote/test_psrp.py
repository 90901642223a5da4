"""The CreatePipeline message dagcheck sends is byte for byte what pypsrp 0.9 builds, without the deep
copies pypsrp makes of every command (dagcheck.remote.psrp_wire._one_statement)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from pypsrp.complex_objects import ApartmentState, HostInfo, Pipeline, RemoteStreamOptions
from pypsrp.messages import CreatePipeline, Message
from pypsrp.powershell import PowerShell
from pypsrp.serializer import Serializer

from dagcheck.remote import psrp_wire

RPID, PID = str(uuid.uuid4()), str(uuid.uuid4())


def _message(build) -> bytes:  # type: ignore[no-untyped-def]
    """What PowerShell.begin_invoke hands the fragmenter, for the commands `build` adds."""
    ps = PowerShell.__new__(PowerShell)
    ps.commands, ps.is_nested, ps.history_string, ps._current_cmd = [], False, None, None
    ps.runspace_pool = SimpleNamespace(
        host=None, apartment_state=ApartmentState.UNKNOWN, id=RPID, pipelines={}, protocol_version="2.3"
    )
    build(ps)
    pipeline = Pipeline(is_nested=False, cmds=ps.commands, history=None, redirect_err_to_out=False)
    create = CreatePipeline(
        True,
        ApartmentState(value=ApartmentState.UNKNOWN),
        RemoteStreamOptions(value=RemoteStreamOptions.ADD_INVOCATION_INFO),
        False,
        HostInfo(host=None),
        pipeline,
        False,
    )
    return Message(0x00021006, RPID, PID, create, Serializer()).pack()


PIPELINES = {
    "a cmdlet and its parameters": lambda ps: (
        ps.add_cmdlet("Get-MailboxDatabase").add_parameter("Server", "mbx1").add_parameter("Status", True)
    ),
    "a cmdlet | ForEach-Object -MemberName": lambda ps: (
        ps.add_cmdlet("Get-Command")
        .add_parameter("Name", "ExSetup.exe")
        .add_cmdlet("ForEach-Object")
        .add_parameter("MemberName", "FileVersionInfo")
    ),
    "two statements": lambda ps: ps.add_cmdlet("Get-Queue").add_statement().add_cmdlet("Get-Date"),
}


@pytest.mark.parametrize("build", PIPELINES.values(), ids=PIPELINES.keys())
def test_the_message_is_the_one_pypsrp_builds(build, monkeypatch) -> None:
    ours = _message(build)
    monkeypatch.setattr(Pipeline, "_get_statements", psrp_wire._deep_statements)
    assert Pipeline._get_statements is not psrp_wire._one_statement
    assert ours == _message(build)


def test_a_one_statement_pipeline_is_not_copied_and_two_statements_are(monkeypatch) -> None:
    copied: list[int] = []
    deep = psrp_wire._deep_statements

    def counted(pipeline: Pipeline) -> list[list[object]]:
        copied.append(len(pipeline.commands))
        return deep(pipeline)

    monkeypatch.setattr(psrp_wire, "_deep_statements", counted)
    _message(PIPELINES["a cmdlet | ForEach-Object -MemberName"])
    assert copied == []
    _message(PIPELINES["two statements"])
    assert copied and all(n == 2 for n in copied)
