"""The lab's virtual directories, with the authentication Microsoft's documentation gives their defaults
(issue 23)."""

from __future__ import annotations

from dagcheck.lab.inprocess import InProcessTransport
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.virtual_directories import parse_virtual_directory
from tests.lab.inprocess import organization as _org


def _auth(org, cmdlet: str) -> tuple[str, ...]:
    objs = InProcessTransport(org).run("mbx1", Endpoint.EXCHANGE, Command.of(cmdlet, Server="mbx1"))
    return parse_virtual_directory(objs[0], "mbx1").internal_auth


def test_vdir_authentication_follows_learn() -> None:
    org = _org()
    assert _auth(org, "Get-ActiveSyncVirtualDirectory") == ("Basic",)
    assert "Basic" in _auth(org, "Get-AutodiscoverVirtualDirectory")
    assert "WSSecurity" in _auth(org, "Get-WebServicesVirtualDirectory")
    assert _auth(org, "Get-PowerShellVirtualDirectory") == ("Kerberos",)
