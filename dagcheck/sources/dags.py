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

from dagcheck import model
from dagcheck.remote.base import Command

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
    value = model.text(model.prop(obj, name))
    return value if value and value.strip() else None


def parse(obj: Any) -> DagConfig:
    return DagConfig(
        name=model.required(obj, CMDLET, "Name"),
        members=model.ad_names(obj, CMDLET, "Servers"),
        witness_server=_text(obj, "WitnessServer"),
        witness_directory=_text(obj, "WitnessDirectory"),
        alternate_witness_server=_text(obj, "AlternateWitnessServer"),
        alternate_witness_directory=_text(obj, "AlternateWitnessDirectory"),
    )
