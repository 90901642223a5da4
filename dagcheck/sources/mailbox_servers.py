"""Every Mailbox server: `Get-MailboxServer` without -Identity.

Read by discovery for each server's DAG (Nil for a standalone mailbox server, as in CSS-Exchange's
GetMailboxServer.xml) and the activation policy in use (DatabaseCopyAutoActivationPolicy: Unrestricted,
IntrasiteOnly, Blocked; EXCHANGE-NOTES 4.5; Learn:
https://learn.microsoft.com/powershell/module/exchange/get-mailboxserver).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources import values
from dagcheck.sources.base import Source

CMDLET = "Get-MailboxServer"
COMMAND = Command.of(CMDLET)
ACTIVATION_POLICY_BY_INT = {0: "Unrestricted", 1: "IntrasiteOnly", 2: "Blocked"}


@dataclass(frozen=True)
class MailboxServerEntry:
    name: str
    dag: str | None  # None: a mailbox server in no DAG
    activation_policy: str


def parse(obj: Any) -> MailboxServerEntry:
    dag = values.prop(obj, "DatabaseAvailabilityGroup")
    return MailboxServerEntry(
        name=values.short_name(values.required(obj, CMDLET, "Name")),
        dag=None if dag in (None, "") else values.ad_name(dag, CMDLET, "DatabaseAvailabilityGroup"),
        activation_policy=values.enum_value(obj, CMDLET, "DatabaseCopyAutoActivationPolicy", ACTIVATION_POLICY_BY_INT),
    )


# ---- one server's activation settings, for the health checks: -Identity <server> -----------------------


@dataclass(frozen=True)
class MailboxServer:
    name: str
    activation_policy: str
    move_now: bool

    @property
    def key(self) -> str:
        return self.name


def parse_mailbox_server(obj: Any) -> MailboxServer:
    return MailboxServer(
        values.short_name(values.required(obj, CMDLET, "Name")),
        values.enum_value(obj, CMDLET, "DatabaseCopyAutoActivationPolicy", ACTIVATION_POLICY_BY_INT),
        values.boolean(obj, CMDLET, "DatabaseCopyActivationDisabledAndMoveNow", False),
    )


def server_command(server: str) -> Command:
    return Command.of(CMDLET, Identity=server)


SOURCE = Source("mailbox_server", Endpoint.EXCHANGE, server_command, lambda obj, server: parse_mailbox_server(obj))
