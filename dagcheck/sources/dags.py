"""Every database availability group: `Get-DatabaseAvailabilityGroup -Status` without -Identity.

Read by discovery for each DAG's members, witness and alternate witness. Shape (EXCHANGE-NOTES 4.11;
Learn: https://learn.microsoft.com/powershell/module/exchange/get-databaseavailabilitygroup): Servers is
MultiValuedProperty<ADObjectId>; WitnessServer / AlternateWitnessServer are FileShareWitnessServerName
(a string over remote PowerShell), WitnessDirectory / AlternateWitnessDirectory NonRootLocalLongFullPath
(a string). -Status adds OperationalServers, PrimaryActiveManager and WitnessShareInUse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources import values
from dagcheck.sources.base import Source

CMDLET = "Get-DatabaseAvailabilityGroup"
COMMAND = Command.of(CMDLET, Status=True)


@dataclass(frozen=True)
class DagConfig:
    name: str
    members: tuple[str, ...]  # short, lower-case server names
    witness_server: str | None
    witness_directory: str | None
    alternate_witness_server: str | None
    alternate_witness_directory: str | None


def _text(obj: Any, name: str) -> str | None:
    value = values.text(values.prop(obj, name))
    return value if value and value.strip() else None


def parse(obj: Any) -> DagConfig:
    return DagConfig(
        name=values.required(obj, CMDLET, "Name"),
        members=values.ad_names(obj, CMDLET, "Servers"),
        witness_server=_text(obj, "WitnessServer"),
        witness_directory=_text(obj, "WitnessDirectory"),
        alternate_witness_server=_text(obj, "AlternateWitnessServer"),
        alternate_witness_directory=_text(obj, "AlternateWitnessDirectory"),
    )


# ---- one DAG with its live status, for the health checks: -Identity <DAG> -Status ----------------------

GDAG = CMDLET


@dataclass(frozen=True)
class DagStatus:
    name: str
    servers: tuple[str, ...]
    operational_servers: tuple[str, ...]
    primary_active_manager: str
    servers_in_maintenance: tuple[str, ...]
    witness_server: str | None
    witness_share_in_use: str | None

    @property
    def key(self) -> str:
        return self.name


WITNESS_SHARE_IN_USE_BY_INT = {0: "Primary", 1: "Alternate", 2: "InvalidConfiguration", 3: "None"}


def parse_dag_status(obj: Any) -> DagStatus:
    pam = values.prop(obj, "PrimaryActiveManager")
    in_use = values.prop(obj, "WitnessShareInUse")
    return DagStatus(
        name=values.required(obj, GDAG, "Name"),
        servers=values.ad_names(obj, GDAG, "Servers"),
        operational_servers=values.ad_names(obj, GDAG, "OperationalServers"),
        # Empty without -Status (or while no PAM is elected): '' makes the PAM check fail visibly.
        primary_active_manager="" if pam is None else values.short_name(values.ad_name(pam, GDAG, "PrimaryActiveManager")),
        servers_in_maintenance=values.ad_names(obj, GDAG, "ServersInMaintenance"),
        witness_server=values.text(values.prop(obj, "WitnessServer")),
        witness_share_in_use=None
        if in_use is None
        else values.enum_value(obj, GDAG, "WitnessShareInUse", WITNESS_SHARE_IN_USE_BY_INT),
    )


def status_command(dag: str | None) -> Command:
    """-Identity: without it every DAG of the organisation comes back, from every server (and -Status
    asks each DAG's Active Manager). A server in no DAG (dag None) asks for every DAG."""
    return Command.of(GDAG, Identity=dag, Status=True) if dag else Command.of(GDAG, Status=True)


SOURCE = Source("dag_status", Endpoint.EXCHANGE, status_command, lambda obj, server: parse_dag_status(obj), dag_wide=True)
