"""IIS run-time state: the Exchange web sites and application pools, started or not (appcmd over WinRS).

Why appcmd: applicationHost.config (dagcheck/sources/iis_config.py) holds the configuration, not whether a site or pool is
running now; the state lives in the Windows Process Activation Service. `appcmd list site` and
`appcmd list apppool` answer it for every site and every pool in one call each, in a text format stable since
IIS 7 (Learn, "Getting Started with AppCmd.exe", learn.microsoft.com/iis/get-started/getting-started-with-iis/
getting-started-with-appcmdexe; appcmd is in %windir%\\system32\\inetsrv, not on the PATH):

    SITE "Default Web Site" (id:1,bindings:http/*:80:,https/*:443:,state:Started)
    APPPOOL "MSExchangeOWAAppPool" (MgdVersion:v4.0,MgdMode:Integrated,state:Started)

The state is Microsoft.Web.Administration's ObjectState: Starting, Started, Stopping, Stopped, Unknown.
The WebAdministration module (Get-WebAppPoolState, Get-WebItemState) gives the same one object per call;
appcmd needs no module import in a remote session and reads the same over WinRS as the other host facts.
Guessed (no capture of an Exchange server's appcmd here): the exact bindings text of Exchange Back End,
and a "Stopped" or "Unknown" state while W3SVC or WAS is stopped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dagcheck.errors import ParseError, RemoteError
from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult
from dagcheck.sources.base import HostSource
from dagcheck.sources.values import short_name

APPCMD = r"%windir%\system32\inetsrv\appcmd.exe"
LIST_SITES = f"{APPCMD} list site"
LIST_POOLS = f"{APPCMD} list apppool"
COMMAND_LINES = [LIST_SITES, LIST_POOLS]
# The sites Exchange setup creates and every client request goes through (front end, then back end).
EXCHANGE_SITES = ("Default Web Site", "Exchange Back End")
_LINE = re.compile(r'^(?P<kind>SITE|APPPOOL) "(?P<name>[^"]+)" \((?P<attributes>.*)\)$')
_STATE = re.compile(r"(?:^|,)state:(?P<state>[A-Za-z]+)$")


@dataclass(frozen=True)
class IisObject:
    """One web site or application pool of a server and its run-time state."""

    server: str
    kind: str  # "site" or "apppool"
    name: str
    state: str  # Started, Stopped, Starting, Stopping, Unknown

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"

    @property
    def is_exchange_pool(self) -> bool:
        """Exchange's own pools are all named MSExchange...AppPool (setup creates them; DefaultAppPool is IIS's)."""
        return self.kind == "apppool" and self.name.lower().startswith("msexchange")


def _parse_one(result: CmdResult, line: str, server: str) -> list[IisObject]:
    if result.rc != 0:
        reason = (result.stderr or result.stdout).strip() or f"exit code {result.rc}"
        raise RemoteError(server, line, reason)
    out = []
    for text in result.stdout.splitlines():
        if not text.strip():
            continue
        match = _LINE.match(text.strip())
        state = _STATE.search(match.group("attributes")) if match else None
        if match is None or state is None:
            raise ParseError(
                line,
                "output line",
                text.strip(),
                'SITE "<name>" (id:..,bindings:..,state:<state>) or APPPOOL "<name>" (...,state:<state>)',
                server,
            )
        kind = "site" if match.group("kind") == "SITE" else "apppool"
        out.append(IisObject(short_name(server), kind, match.group("name"), state.group("state")))
    return out


def parse(results: list[CmdResult], server: str) -> list[IisObject]:
    """Both listings, sites first; a failed or unreadable one fails the source for this server."""
    return [o for line, result in zip(COMMAND_LINES, results, strict=True) for o in _parse_one(result, line, server)]


def _lines(server: str, expectations: Expectations) -> list[str]:
    return list(COMMAND_LINES)


def _parse(results: list[CmdResult], server: str, expectations: Expectations) -> list[IisObject]:
    return parse(results, server)


# Whether the Exchange web sites and application pools run.
SOURCE = HostSource("iis_state", _lines, _parse)
