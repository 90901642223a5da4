"""In-process transport over the lab: no network, but every object still goes through CLIXML.

A unit-test convenience that lives with the lab, not in the product's transport package: the checks,
the report and CI talk to the lab through pypsrp over HTTP (dagcheck.remote.psrp); this exists so
that lab semantics can be tested in milliseconds. It implements dagcheck.remote.base.Transport.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from psrpcore.types import serialize

from dagcheck.clixml import CIPHER, from_element_text
from dagcheck.errors import CmdletFailed, ConnectionFailed
from dagcheck.lab import cmdlets, winrs
from dagcheck.lab.errors import LabCmdletError
from dagcheck.lab.state import Organization
from dagcheck.remote.base import CmdResult, Command, Endpoint, Transcript, Transport


class InProcessTransport(Transport):
    def __init__(self, org: Organization, transcript: Transcript | None = None) -> None:
        super().__init__(transcript)
        self.org = org

    def run(self, server: str, endpoint: Endpoint, command: Command) -> list[Any]:
        with self.transcript.record(server, endpoint, command) as inv:
            if self.org.faults_matching("dropped_connection", server):
                raise ConnectionFailed(server, command.cmdlet, "connection reset by peer (lab fault dropped_connection)")
            pipeline = [(command.cmdlet, command.params())]
            if command.member:
                pipeline.append(("ForEach-Object", {"MemberName": command.member}))
            try:
                objects = cmdlets.run_pipeline(self.org, endpoint.value, server, pipeline)
            except LabCmdletError as exc:
                raise CmdletFailed(server, command.cmdlet, exc.message, exc.category, exc.error_id) from None
            result = [from_element_text(ET.tostring(serialize(o, CIPHER), encoding="unicode")) for o in objects]
            inv.objects = len(result)
            return result

    def run_cmd(self, server: str, command_line: str) -> CmdResult:
        with self.transcript.record(server, Endpoint.WINRS, Command(command_line)) as inv:
            if self.org.faults_matching("dropped_connection", server):
                raise ConnectionFailed(server, command_line, "connection reset by peer (lab fault dropped_connection)")
            rc, out, err = winrs.run(self.org, server, command_line)
            inv.objects = 1
            return CmdResult(rc, out, err)

    def close(self) -> None:
        pass
