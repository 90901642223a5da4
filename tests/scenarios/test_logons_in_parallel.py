"""Once an account has logged on, the servers that were waiting behind its first logon open side by side
(issue 14): one logon at a time is only for an account not yet proven (issue 9's one failed logon)."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from dagcheck.inventory import load_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.embedded import lab_connection
from dagcheck.lab.server import LabServer
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.psrp import PsrpTransport
from tests.conftest import ROOT

SERVERS = ("mbx1", "mbx2", "mbx3", "mbx4")


@pytest.fixture
def transport(monkeypatch):
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    with LabServer(build_organization(inventory)) as server:
        monkeypatch.setenv("DAGCHECK_TEST_USER", server.credentials.username)
        monkeypatch.setenv("DAGCHECK_TEST_PASSWORD", server.credentials.password)
        servers = {
            s.name: dataclasses.replace(
                s,
                connection=dataclasses.replace(
                    lab_connection(s.connection, server.exchange_uri(s.name), server.windows_uri(s.name)),
                    username_env="DAGCHECK_TEST_USER",
                    password_env="DAGCHECK_TEST_PASSWORD",
                ),
            )
            for s in inventory.servers
        }
        t = PsrpTransport(servers)
        try:
            yield t
        finally:
            t.close()


def test_servers_waiting_behind_the_first_logon_then_open_side_by_side(transport, monkeypatch) -> None:
    opening = transport._open
    lock = threading.Lock()
    state: dict[str, Any] = {"active": 0, "peak": 0, "opens": 0}
    all_in = threading.Event()

    def watched(server: Any, endpoint: Endpoint) -> Any:
        with lock:
            state["opens"] += 1
            later = state["opens"] > 1
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
            if state["active"] == len(SERVERS) - 1:
                all_in.set()
        try:
            if later:  # after the first logon: hold this open until the other two are opening too
                all_in.wait(timeout=10)
            return opening(server, endpoint)
        finally:
            with lock:
                state["active"] -= 1

    monkeypatch.setattr(transport, "_open", watched)
    errors: list[BaseException] = []

    def read(name: str) -> None:
        try:
            transport.run(name, Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity=name))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(name,)) for name in SERVERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert state["opens"] == len(SERVERS)
    # The first logon opens alone; the three that waited for it open together, not one after another.
    assert state["peak"] == len(SERVERS) - 1, f"at most {state['peak']} runspace pool(s) opened at once"
