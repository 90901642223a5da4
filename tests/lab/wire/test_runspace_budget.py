"""Exchange's runspace budget refusal (issue 24, item 12): "Fail to create a runspace because you have
exceeded your budget to create runspace. Please wait for N seconds." reaches the client as a Broken
RunspacePool state with an error record, not as a WSMan fault. It used to mark the server unreachable for
the run; the transport now waits the time it names and opens again, within its throttling budget."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from dagcheck.errors import ConnectionFailed, Throttled
from dagcheck.inventory import load_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.embedded import lab_connection
from dagcheck.lab.server import LabServer
from dagcheck.lab.settings import Fault
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.psrp import PsrpTransport
from dagcheck.remote.psrp_shells import MAX_RETRY_AFTER
from tests.conftest import ROOT, lab_data

REFUSAL = "exceeded your budget to create runspace"


@pytest.fixture
def lab():
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    org = build_organization(inventory)
    with LabServer(org) as server:
        servers = {
            s.name: dataclasses.replace(
                s, connection=lab_connection(s.connection, server.exchange_uri(s.name), server.windows_uri(s.name))
            )
            for s in inventory.servers
        }
        creds = {n: Credentials(server.credentials.username, server.credentials.password) for n in servers}
        transport = PsrpTransport(servers, credentials=creds)
        try:
            yield org, server, transport
        finally:
            transport.close()


def _read(transport: PsrpTransport, name: str) -> list:
    return transport.run(name, Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity=name))


def test_a_budget_refusal_is_waited_out_and_the_server_is_read(lab, caplog) -> None:
    org, server, transport = lab
    org.runtime_faults.append(Fault("runspace_budget_exceeded", {"server": "mbx1", "seconds": 2}))
    with caplog.at_level(logging.INFO, logger="dagcheck.remote.psrp_shells"):
        assert _read(transport, "mbx1")
    waits = [r.getMessage() for r in caplog.records if REFUSAL in r.getMessage()]
    assert waits and all("waiting 2 s before opening again" in w for w in waits), waits
    assert not transport.states.blind()
    assert [i.outcome for i in transport.transcript.invocations] == ["ok"]
    assert [s.server_name for s in server.open_shells()] == ["mbx1"]  # the refused shells were not left behind


def test_a_budget_refusal_beyond_the_wait_budget_fails_naming_it(lab) -> None:
    org, server, transport = lab
    org.runtime_faults.append(Fault("runspace_budget_exceeded", {"server": "mbx2", "seconds": 600}))
    assert 600 > MAX_RETRY_AFTER
    with pytest.raises(Throttled) as exc:
        _read(transport, "mbx2")
    reason = exc.value.reason
    assert REFUSAL in reason and "Please wait for 600 seconds" in reason and "runspace budget" in reason, reason
    assert "unreachable" not in reason
    assert {n: b.kind for n, b in transport.states.blind().items()} == {"mbx2": "throttled"}
    with pytest.raises(ConnectionFailed, match=REFUSAL):  # not asked again this run
        _read(transport, "mbx2")
    assert [i.outcome for i in transport.transcript.invocations] == ["throttled"]  # the second was never sent
    assert not server.open_shells("mbx2")
    assert _read(transport, "mbx3")  # the others are untouched


def test_a_nightly_checks_the_server_after_the_back_off(run_checks) -> None:
    result = run_checks(lab_data([{"kind": "runspace_budget_exceeded", "server": "mbx2", "seconds": 2}]))
    assert not result.failed(), sorted(result.short_failed())[:5]
    assert result.exit_code == 0
    assert any(n.endswith("[mbx2]") and o == "passed" for n, o in result.outcomes.items())


def test_a_nightly_with_a_budget_refusal_beyond_the_budget_fails_that_server_alone(run_checks) -> None:
    from dagcheck.safety import EXIT_BLIND

    result = run_checks(lab_data([{"kind": "runspace_budget_exceeded", "server": "mbx2", "seconds": 900}]))
    assert result.exit_code == EXIT_BLIND
    assert result.failed() and all("mbx2" in n for n in result.failed()), sorted(result.short_failed())
    exchange = [m for m in result.messages.values() if REFUSAL in m]
    assert exchange, list(result.messages.values())[:2]
