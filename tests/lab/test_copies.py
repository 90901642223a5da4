"""The lab's database copies: where actives go when a server's copies are moved away."""

from __future__ import annotations

import pytest

from dagcheck.remote.base import Command, Endpoint
from dagcheck.sources.database_copies import parse_copy_status
from tests.lab import inprocess


@pytest.fixture
def lab():
    return inprocess.lab()


def test_move_now_moves_actives_to_a_healthy_unblocked_copy(lab) -> None:
    org, t = lab
    t.run("mbx2", Endpoint.EXCHANGE, Command.of("Set-MailboxServer", Identity="mbx2", DatabaseCopyAutoActivationPolicy="Blocked"))
    t.run(
        "mbx1",
        Endpoint.EXCHANGE,
        Command.of(
            "Set-MailboxServer",
            Identity="mbx1",
            DatabaseCopyAutoActivationPolicy="Blocked",
            DatabaseCopyActivationDisabledAndMoveNow=True,
        ),
    )
    # DB01 (mbx1, mbx2, mbx3): mbx2 is Blocked, so it goes to mbx3.
    assert org.databases["db01"].active_server == "mbx3"
    copies = [
        parse_copy_status(o) for o in t.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-MailboxDatabaseCopyStatus", Server="mbx1"))
    ]
    assert all(not c.active and c.status == "Healthy" for c in copies)
