"""A testinfra backend over dagcheck's own transport: host facts through the same pypsrp connection.

testinfra's winrm backend would bring pywinrm, a second WSMan client with its own auth, TLS and
timeout settings, and a second connection per server. This backend keeps one client (pypsrp), one
set of credentials and one transcript: `host.run("reg.exe query ...")` becomes a WinRS command on
the server's Windows endpoint, and is recorded like every other remote call.
"""

from __future__ import annotations

from typing import Any

import testinfra.host  # type: ignore[import-untyped]  # testinfra ships no type information
from testinfra.backend import base  # type: ignore[import-untyped]

from dagcheck.remote.base import Transport


def _quote(argument: str) -> str:
    """cmd.exe quoting: wrap in double quotes when needed; embedded quotes are doubled."""
    if argument and not any(c in argument for c in ' \t"&|<>^'):
        return argument
    return '"' + argument.replace('"', '""') + '"'


class DagcheckWinRSBackend(base.BaseBackend):
    NAME = "dagcheck-winrs"

    def __init__(self, transport: Transport, server: str, **kwargs: Any) -> None:
        self.transport = transport
        super().__init__(server, **kwargs)

    @staticmethod
    def quote(command: str, *args: str) -> str:
        return command % tuple(_quote(a) for a in args) if args else command

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        line = self.get_command(command, *args)
        result = self.transport.run_cmd(self.hostname, line)
        return self.result(result.rc, self.encode(line), result.stdout, result.stderr)


def host_for(transport: Transport, server: str) -> testinfra.host.Host:
    """A testinfra Host for one server of the inventory (host.run, host.check_output ...)."""
    backend = DagcheckWinRSBackend(transport, server)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host
