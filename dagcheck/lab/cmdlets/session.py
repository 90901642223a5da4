"""What the Exchange management session itself offers: Get-Command in the Microsoft.Exchange endpoint.

Exchange builds each remote session from the account's RBAC role assignments: only the cmdlets (and
parameters) its roles grant exist in that runspace, so Get-Command there lists exactly what the account may
run ("Find the permissions required to run any Exchange cmdlet",
https://learn.microsoft.com/powershell/exchange/find-exchange-cmdlet-permissions). The lab's session offers
every Exchange cmdlet it implements, minus those a cmdlet_missing fault takes away from a server (a role
group that does not grant the cmdlet). Object shape: CmdletInfo with Name, CommandType, ModuleName;
guessed for the remote session (docs/remote-session-shapes.md).
"""

from __future__ import annotations

from typing import Any

from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import BY_ENDPOINT, EXCHANGE, Call, cmdlet


@cmdlet("Get-Command", "Name", "CommandType", "Module", endpoint=EXCHANGE)
def get_command(call: Call) -> list[Any]:
    wanted = {
        str(n).lower()
        for n in (call.get("Name") if isinstance(call.get("Name"), list) else [call.get("Name")] if call.get("Name") else [])
    }
    out = []
    for (endpoint, key), spec in sorted(BY_ENDPOINT.items()):
        if endpoint != EXCHANGE or (wanted and key not in wanted):
            continue
        if call.org.faults_matching("cmdlet_missing", call.server.name, spec.name):
            continue
        out.append(
            ps.obj(
                ["System.Management.Automation.CmdletInfo", "System.Management.Automation.CommandInfo", "System.Object"],
                {"Name": spec.name, "CommandType": "Cmdlet", "ModuleName": "Microsoft.Exchange.Management.PowerShell.E2010"},
                to_string=spec.name,
            )
        )
    return out
