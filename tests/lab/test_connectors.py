"""The lab's receive connectors, with the authentication Microsoft's documentation gives their defaults (issue 23)."""

from __future__ import annotations

from dagcheck.lab.inprocess import InProcessTransport
from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.receive_connectors import parse_receive_connector
from tests.lab.inprocess import organization as _org


def test_default_receive_connector_does_not_require_tls_for_basic_auth() -> None:
    org = _org()
    objs = InProcessTransport(org).run("mbx1", Endpoint.EXCHANGE, Command.of("Get-ReceiveConnector", Server="mbx1"))
    auth = {c.name: c.auth_mechanism for c in (parse_receive_connector(o, "mbx1") for o in objs)}
    assert "BasicAuthRequireTLS" not in auth["Default MBX1"] and "BasicAuth" in auth["Default MBX1"]
    assert "BasicAuthRequireTLS" in auth["Client Frontend MBX1"]
