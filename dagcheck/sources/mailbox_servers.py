"""Every Mailbox server: `Get-MailboxServer` without -Identity.

Read by discovery for each server's DAG (Nil for a standalone mailbox server, as in CSS-Exchange's
GetMailboxServer.xml) and the activation policy in use (DatabaseCopyAutoActivationPolicy: Unrestricted,
IntrasiteOnly, Blocked; EXCHANGE-NOTES 4.5; Learn:
https://learn.microsoft.com/powershell/module/exchange/get-mailboxserver).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck import model
from dagcheck.remote.base import Command

CMDLET = "Get-MailboxServer"
COMMAND = Command.of(CMDLET)


@dataclass(frozen=True)
class MailboxServerEntry:
    name: str
    dag: str | None  # None: a mailbox server in no DAG
    activation_policy: str


def parse(obj: Any) -> MailboxServerEntry:
    dag = model.prop(obj, "DatabaseAvailabilityGroup")
    return MailboxServerEntry(
        name=model.short_name(model.required(obj, CMDLET, "Name")),
        dag=None if dag in (None, "") else model.ad_name(dag, CMDLET, "DatabaseAvailabilityGroup"),
        activation_policy=model.enum_value(obj, CMDLET, "DatabaseCopyAutoActivationPolicy", model.ACTIVATION_POLICY_BY_INT),
    )
