"""Two servers' WSMan connections built at once (collection opens them from many threads) never run
pypsrp's namespace registration side by side: ElementTree's `register_namespace` rewrites a module-wide
dict without a lock, and a 300-server run once ended during collection with "dictionary keys changed
during iteration" from it (issue 27)."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

from dagcheck.inventory import parse_inventory
from dagcheck.lab.fleet import fleet_inventory
from dagcheck.remote.base import Endpoint
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.psrp import PsrpTransport


def test_connections_built_from_two_threads_register_namespaces_one_at_a_time(monkeypatch) -> None:
    inventory = parse_inventory(fleet_inventory(2))
    servers = {s.name: s for s in inventory.servers}
    transport = PsrpTransport(servers, credentials={n: Credentials("lab\\dagcheck", "x") for n in servers})
    real = ET.register_namespace
    lock = threading.Lock()
    inside = [0]
    most = [0]
    both = threading.Event()

    def watched(prefix: str, uri: str) -> None:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            if inside[0] == 2:
                both.set()
        try:
            # Hold the first registration open until a second thread joins it, or for at most 2 s: built
            # one at a time, none ever does (the wait is a budget for the other thread, not a timing).
            if not both.is_set() and inside[0] == 1:
                both.wait(2.0)
            real(prefix, uri)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(ET, "register_namespace", watched)
    errors: list[BaseException] = []

    def build(server) -> None:
        try:
            transport._wsman(server, Endpoint.EXCHANGE)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(s,)) for s in inventory.servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert most[0] == 1  # never two registrations at once
    assert len(transport._connections) == 2
