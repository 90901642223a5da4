"""The databases a server hosts, mounted or not: `Get-MailboxDatabase -Server <server> -Status`.

-Status fills Mounted, MountedOnServer and DatabaseSize; ActivationPreference arrives as KeyValuePair bags
or their '[EX1, 1]' strings (EXCHANGE-NOTES §5).
Learn: https://learn.microsoft.com/powershell/module/exchange/get-mailboxdatabase
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dagcheck.errors import ParseError
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.base import Source
from dagcheck.sources.values import ad_name, boolean, byte_size, integer, prop, required, short_name


@dataclass(frozen=True)
class MailboxDatabase:
    name: str
    mounted: bool | None
    mounted_on: str  # short server name of the active copy
    activation_preference: tuple[tuple[str, int], ...]
    seen_from: str = ""  # the server whose Get-MailboxDatabase -Server returned it
    size_bytes: int | None = None  # DatabaseSize (ByteQuantifiedSize), with -Status

    @property
    def key(self) -> str:
        return self.name

    @property
    def preferred_server(self) -> str | None:
        return min(self.activation_preference, key=lambda p: p[1])[0] if self.activation_preference else None


GMDB = "Get-MailboxDatabase"
_KVP_TEXT = re.compile(r"^\[([^,\]]+),\s*(\d+)\]$")


def _preference(value: Any) -> tuple[tuple[str, int], ...]:
    """ActivationPreference: KeyValuePair bags {Key, Value} or their '[EX1, 1]' string form (§5)."""
    out = []
    for entry in value or ():
        if isinstance(entry, str):
            match = _KVP_TEXT.match(entry.strip())
            if not match:
                raise ParseError(GMDB, "ActivationPreference[]", entry, "'[EX1, 1]' or a {Key, Value} pair")
            out.append((short_name(match.group(1).strip()), int(match.group(2))))
        else:
            key = prop(entry, "Key")
            if key is None:
                raise ParseError(GMDB, "ActivationPreference[]", entry, "'[EX1, 1]' or a {Key, Value} pair")
            out.append(
                (
                    short_name(ad_name(key, GMDB, "ActivationPreference[].Key")),
                    integer(entry, GMDB, "Value", label="ActivationPreference[].Value"),
                )
            )
    return tuple(out)


def parse_mailbox_database(obj: Any, seen_from: str = "") -> MailboxDatabase:
    mounted = prop(obj, "Mounted")
    return MailboxDatabase(
        seen_from=short_name(seen_from),
        name=required(obj, GMDB, "Name"),
        mounted=None if mounted is None else boolean(obj, GMDB, "Mounted"),
        mounted_on=short_name(prop(obj, "MountedOnServer") or prop(obj, "ServerName") or ""),
        activation_preference=_preference(prop(obj, "ActivationPreference")),
        size_bytes=byte_size(obj, GMDB, "DatabaseSize"),
    )


def command(server: str) -> Command:
    return Command.of(GMDB, Server=server, Status=True)


SOURCE = Source("databases", Endpoint.EXCHANGE, command, parse_mailbox_database)
