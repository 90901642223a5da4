"""The lab's Set-MailboxServer: its parameters bound as PowerShell binds them."""

from __future__ import annotations

import pytest

from dagcheck.errors import CmdletFailed
from dagcheck.remote.base import Command, Endpoint
from tests.lab import inprocess


@pytest.fixture
def lab():
    return inprocess.lab()


def test_invalid_enum_value_is_refused_like_parameter_binding(lab) -> None:
    _, t = lab
    with pytest.raises(CmdletFailed, match="Unable to match the identifier name Sometimes"):
        t.run(
            "mbx1",
            Endpoint.EXCHANGE,
            Command.of("Set-MailboxServer", Identity="mbx1", DatabaseCopyAutoActivationPolicy="Sometimes"),
        )
