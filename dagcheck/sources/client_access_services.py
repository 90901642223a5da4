"""Every server's Autodiscover service connection point: `Get-ClientAccessService` without -Identity.

AutoDiscoverServiceInternalUri is the SCP's URL and AutoDiscoverSiteScope the AD sites it serves
(EXCHANGE-NOTES 4.9; Learn: https://learn.microsoft.com/powershell/module/exchange/get-clientaccessservice).
Discovery turns them into the per-site Autodiscover expectation as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagcheck import model
from dagcheck.remote.base import Command

CMDLET = "Get-ClientAccessService"
COMMAND = Command.of(CMDLET)


@dataclass(frozen=True)
class ScpEntry:
    name: str
    uri: str | None  # None: the server publishes no SCP URI
    site_scope: tuple[str, ...]


def parse(obj: Any) -> ScpEntry:
    uri = model.text(model.prop(obj, "AutoDiscoverServiceInternalUri"))
    return ScpEntry(
        name=model.short_name(model.required(obj, CMDLET, "Name")),
        uri=uri or None,
        site_scope=model.strings(model.prop(obj, "AutoDiscoverSiteScope")),
    )
