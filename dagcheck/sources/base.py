"""How a source declares itself: what it runs (a cmdlet, Windows command lines, or its own probe) and its parser.

Each source module (dagcheck/sources/<resource>.py) declares one of these next to its dataclass and parser;
dagcheck/sources/registry.py lists them; dagcheck/collect.py runs them, once per server per phase.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult, Command, Endpoint
from dagcheck.sources import ProbeContext


@dataclass(frozen=True)
class Source:
    """One cmdlet (or a few of one kind) run on a server's endpoint, and the parser of each object.

    dag_wide: the command takes the DAG's name (None for a server in no DAG) instead of the server's,
    and its answer is the same from every member; parse still gets the member that reads it."""

    name: str
    endpoint: Endpoint
    command: Callable[[Any], Command | list[Command]]
    parse: Callable[[Any, str], Any]
    dag_wide: bool = False

    def commands(self, server: str | None) -> list[Command]:
        made = self.command(server)
        return made if isinstance(made, list) else [made]


@dataclass(frozen=True)
class HostSource:
    """Windows command lines run through the server's testinfra host (WinRS), and their parser."""

    name: str
    lines: Callable[[str, Expectations], list[str]]
    parse: Callable[[list[CmdResult], str, Expectations], list[Any]]
    endpoint: Endpoint = Endpoint.WINRS


@dataclass(frozen=True)
class ProbeSource:
    """A source that makes its own requests (HTTPS to a server's health pages) or times its call (the
    server's clock): collect(ProbeContext) may read other sources of the same snapshot first (memoized,
    never a second call), use the HTTPS client with the server's TLS settings, or run one command."""

    name: str
    lines: Callable[[str], list[str]]
    collect: Callable[[ProbeContext], list[Any]]
