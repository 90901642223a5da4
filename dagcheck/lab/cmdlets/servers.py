"""Get-ExchangeServer, Get-MailboxServer and Set-MailboxServer: the server objects and the activation policy."""

from __future__ import annotations

import uuid
from typing import Any

from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import (
    MGMT,
    SYSCONF,
    Call,
    bool_param,
    cmdlet,
    enum_param,
    lookup_server,
    server_id,
    target_servers,
    version,
)


@cmdlet("Get-ExchangeServer", "Identity", "Status")
def get_exchange_server(call: Call) -> list[Any]:
    out = []
    for s in target_servers(call):
        site_dn = f"CN={s.site},CN=Sites,CN=Configuration,DC=contoso,DC=test"
        out.append(
            ps.obj(
                [f"{MGMT}.ExchangeServer", *ps.AD_PRESENTATION],
                {
                    "Name": s.name.upper(),
                    "Edition": ps.enum("Microsoft.Exchange.Data.ServerEditionType", "Enterprise"),
                    "Fqdn": s.fqdn,
                    "Domain": s.fqdn.split(".", 1)[1] if "." in s.fqdn else "",  # as in CSS-Exchange GetExchangeServer.xml
                    "IsHubTransportServer": True,
                    "IsClientAccessServer": True,
                    "IsEdgeServer": False,
                    "IsMailboxServer": True,
                    "IsFrontendTransportServer": True,
                    "AdminDisplayVersion": version(s.admin_display_version),
                    "Site": ps.ad_object_id(
                        s.site,
                        site_dn,
                        uuid.uuid5(uuid.NAMESPACE_URL, f"dagcheck-lab:site:{s.site}"),
                        to_string=f"contoso.test/Configuration/Sites/{s.site}",
                    ),
                    "ServerRole": ps.enum(f"{SYSCONF}.ServerRole", "Mailbox"),
                    "IsExchangeTrialEdition": False,
                    "IsExpiredExchangeTrialEdition": False,
                    "DistinguishedName": s.dn,
                    "Identity": server_id(s),
                    "Guid": s.guid,
                },
                to_string=s.name.upper(),
            )
        )
    return out


@cmdlet("Get-MailboxServer", "Identity", "Status")
def get_mailbox_server(call: Call) -> list[Any]:
    out = []
    for s in target_servers(call):
        dag = call.org.dag_of(s)
        out.append(
            ps.obj(
                [f"{MGMT}.MailboxServer", *ps.AD_PRESENTATION],
                {
                    "Name": s.name.upper(),
                    "DatabaseAvailabilityGroup": ps.ad_object_id(
                        dag.name,
                        f"CN={dag.name},CN=Database Availability Groups,"
                        "CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,CN=Contoso,"
                        "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=test",
                        s.guid,
                    )
                    if dag
                    else None,
                    "DatabaseCopyAutoActivationPolicy": ps.enum(
                        f"{SYSCONF}.DatabaseCopyAutoActivationPolicyType", s.activation_policy
                    ),
                    "DatabaseCopyActivationDisabledAndMoveNow": s.move_now,
                    "AutoDatabaseMountDial": "GoodAvailability",
                    "MaximumActiveDatabases": None,
                    "MaximumPreferredActiveDatabases": None,
                    "AdminDisplayVersion": version(s.admin_display_version),
                    "ServerRole": ps.enum(f"{SYSCONF}.ServerRole", "Mailbox"),
                    "Identity": server_id(s),
                    "DistinguishedName": s.dn,
                    "Guid": s.guid,
                },
                to_string=s.name.upper(),
            )
        )
    return out


@cmdlet(
    "Set-MailboxServer",
    "Identity",
    "DatabaseCopyAutoActivationPolicy",
    "DatabaseCopyActivationDisabledAndMoveNow",
    changes_state=True,
)
def set_mailbox_server(call: Call) -> list[Any]:
    s = lookup_server(call, call.require("Identity"))
    policy = enum_param(call, "DatabaseCopyAutoActivationPolicy", ["Unrestricted", "IntrasiteOnly", "Blocked"])
    move_now = bool_param(call, "DatabaseCopyActivationDisabledAndMoveNow")
    if policy is not None:
        s.activation_policy = policy
    if move_now is not None:
        s.move_now = move_now
        if move_now:
            call.org.move_active_databases_off(s)
    return []
