"""Server components and who holds them in which state: `Get-ServerComponentState -Identity <server>`.

Read before and after maintenance (ServerWideOffline, HubTransport ... Inactive by the Maintenance requester)
and for the "any requester Inactive" rule (EXCHANGE-NOTES "Lessons" 2). LocalStates (registry) and
RemoteStates (AD) are lists of RequesterDetails; State is ServiceState (Inactive 0, Active 1, Draining 3).
Learn: https://learn.microsoft.com/powershell/module/exchange/get-servercomponentstate
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from dagcheck.errors import ParseError
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import enum_value, prop, required, short_name

SERVICE_STATE_BY_INT = {0: "Inactive", 1: "Active", 3: "Draining"}


@dataclass(frozen=True)
class RequesterState:
    requester: str
    state: str
    timestamp: dt.datetime | None


@dataclass(frozen=True)
class ComponentState:
    server: str
    component: str
    state: str
    local: tuple[RequesterState, ...]
    remote: tuple[RequesterState, ...]

    @property
    def key(self) -> str:
        return f"{self.server}:{self.component}"

    def requesters(self, state: str) -> tuple[str, ...]:
        """Requesters that hold the component in the given state, from either store."""
        return tuple(sorted({r.requester for r in (*self.local, *self.remote) if r.state == state}))


GSCS = "Get-ServerComponentState"
# RequesterDetails.ToString, the form a list element takes when it is not serialized as a bag
# (the fixture's <ToString>; guessed: that a remote session can send the elements in this form).
_REQUESTER_TEXT = re.compile(r"^Requestor:(?P<requester>[A-Za-z]+); State:(?P<state>[A-Za-z]+); Timestamp:(?P<stamp>.+)$")


def _requesters(obj: Any, name: str) -> tuple[RequesterState, ...]:
    out = []
    for r in prop(obj, name) or ():
        if isinstance(r, str):
            match = _REQUESTER_TEXT.match(r.strip())
            if not match:
                raise ParseError(GSCS, f"{name}[]", r, "a RequesterDetails or 'Requestor:X; State:Y; Timestamp:Z'")
            try:  # en-US ToString of the local time (guessed: read as UTC)
                stamp: dt.datetime | None = dt.datetime.strptime(match["stamp"].strip(), "%m/%d/%Y %I:%M:%S %p").replace(
                    tzinfo=dt.UTC
                )
            except ValueError:
                stamp = None
            out.append(RequesterState(match["requester"], match["state"], stamp))
            continue
        stamp = prop(r, "Timestamp")
        out.append(
            RequesterState(
                required(r, GSCS, "Requester", f"{name}[].Requester"),
                enum_value(r, GSCS, "State", SERVICE_STATE_BY_INT, label=f"{name}[].State"),
                stamp if isinstance(stamp, dt.datetime) else None,
            )
        )
    return tuple(out)


def parse_component_state(obj: Any, server: str | None = None) -> ComponentState:
    return ComponentState(
        server=short_name(server or required(obj, GSCS, "ServerFqdn")),
        component=required(obj, GSCS, "Component"),
        state=enum_value(obj, GSCS, "State", SERVICE_STATE_BY_INT),
        local=_requesters(obj, "LocalStates"),
        remote=_requesters(obj, "RemoteStates"),
    )


def command(server: str) -> Command:
    return Command.of(GSCS, Identity=server)


SOURCE = Source("components", Endpoint.EXCHANGE, command, parse_component_state)
