"""One server that refuses the account must not blind every server (issue 24, item 2).

A wrong password is refused everywhere; a server whose own authentication is broken (an Extended
Protection / channel-binding mismatch after a CU, a vdir whose authentication was reset) refuses alone.
Before the account is withdrawn, the refusal is proven on a second server: at most two failed logons per
account per run, and a server that refuses a proven account fails only itself, named as "this server
refused a credential that works elsewhere".
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from dagcheck.errors import ConnectionFailed
from dagcheck.inventory import load_inventory
from dagcheck.lab.embedded import lab_connection
from dagcheck.lab.settings import Fault
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.psrp import PsrpTransport
from tests.conftest import ROOT, lab_data

SERVERS = ("mbx1", "mbx2", "mbx3", "mbx4")
ELSEWHERE = "this server refused a credential that works elsewhere"


def _transport(lab: Any, monkeypatch: pytest.MonkeyPatch, password: str | None = None) -> PsrpTransport:
    inventory, _, server = lab
    monkeypatch.setenv("DAGCHECK_TEST_USER", server.credentials.username)
    monkeypatch.setenv("DAGCHECK_TEST_PASSWORD", password or server.credentials.password)
    return PsrpTransport(
        {
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
    )


def _read(transport: PsrpTransport, name: str) -> str:
    try:
        transport.run(name, Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity=name))
        return "ok"
    except ConnectionFailed as exc:
        return exc.reason


def _in_parallel(transport: PsrpTransport, names: tuple[str, ...]) -> dict[str, str]:
    """Every server's first call at once, as a nightly's collection starts (three lanes per server)."""
    results: dict[str, list[str]] = {n: [] for n in names}
    threads = [threading.Thread(target=lambda n=n: results[n].append(_read(transport, n))) for n in names for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return {n: r[0] if len(set(r)) == 1 else repr(r) for n, r in results.items()}


def test_the_first_server_refusing_the_account_fails_alone(lab, monkeypatch) -> None:
    """mbx2 refuses and is the first logon of the run: the account is proven on another server, mbx2 fails
    alone with the named reason, and every other server is read (before issue 24: all four blind)."""
    _, org, server = lab
    org.runtime_faults.append(Fault("auth_rejected", {"server": "mbx2"}))
    transport = _transport(lab, monkeypatch)
    try:
        first = _read(transport, "mbx2")
        rest = {n: _read(transport, n) for n in SERVERS if n != "mbx2"}
        again = _read(transport, "mbx2")
    finally:
        transport.close()
    assert ELSEWHERE in first and "logged on to mbx1" in first, first
    assert again == first  # not tried again: one failed logon
    assert set(rest.values()) == {"ok"}, rest
    assert server.failed_logons == {"mbx2": 1}
    assert {n: b.kind for n, b in transport.states.blind().items()} == {"mbx2": "authentication"}


def test_a_refusing_server_among_parallel_first_logons_fails_alone(lab, monkeypatch) -> None:
    _, org, server = lab
    org.runtime_faults.append(Fault("auth_rejected", {"server": "mbx3"}))
    transport = _transport(lab, monkeypatch)
    try:
        results = _in_parallel(transport, SERVERS)
    finally:
        transport.close()
    assert {n: r for n, r in results.items() if n != "mbx3"} == {"mbx1": "ok", "mbx2": "ok", "mbx4": "ok"}
    assert ELSEWHERE in results["mbx3"], results
    assert server.failed_logons == {"mbx3": 1}


def test_a_wrong_password_in_parallel_is_at_most_two_failed_logons_and_fails_everywhere(lab, monkeypatch) -> None:
    _, _, server = lab
    transport = _transport(lab, monkeypatch, password="not-the-password")
    try:
        results = _in_parallel(transport, SERVERS)
    finally:
        transport.close()
    assert sum(server.failed_logons.values()) == 2 and len(server.failed_logons) == 2, server.failed_logons
    refused = " and ".join(sorted(server.failed_logons))
    assert len(set(results.values())) == 1, results
    reason = results["mbx1"]
    assert "authentication failed" in reason and "refused by 2 servers" in reason and ELSEWHERE not in reason
    assert sorted(reason.split(" on ", 1)[1].split(":", 1)[0].split(" and ")) == refused.split(" and ")
    assert {b.kind for b in transport.states.blind().values()} == {"authentication"}
    assert set(transport.states.blind()) == set(SERVERS)


def test_a_wrong_password_with_one_server_in_scope_is_one_failed_logon(lab, monkeypatch) -> None:
    """No other server of the run to prove it on: the account is withdrawn after the one refusal, and no
    server outside the run is contacted to prove it."""
    _, org, server = lab
    transport = _transport(lab, monkeypatch, password="not-the-password")
    transport.scope = {"mbx4"}
    try:
        reason = _read(transport, "mbx4")
    finally:
        transport.close()
    assert server.failed_logons == {"mbx4": 1}
    assert "authentication failed" in reason and "no other server of this run could confirm" in reason, reason
    assert org.call_log == []


# ---- a whole nightly: the four lab servers plus one that answers 401 ---------------------------------


def _five_servers(faults: list[dict[str, Any]]) -> dict[str, Any]:
    data = lab_data(faults)
    data["servers"].append({"name": "mbx5", "fqdn": "mbx5.lab.contoso.test", "site": "Site-B"})
    return data


def test_a_nightly_with_one_server_refusing_the_account_checks_the_other_four(run_checks, monkeypatch) -> None:
    from dagcheck.lab import embedded
    from dagcheck.safety import EXIT_BLIND

    counts: list[dict[str, int]] = []
    stop = embedded.EmbeddedLab.stop
    monkeypatch.setattr(embedded.EmbeddedLab, "stop", lambda self: (counts.append(dict(self.wire.failed_logons)), stop(self)))
    result = run_checks(_five_servers([{"kind": "auth_rejected", "server": "mbx5"}]))
    assert counts == [{"mbx5": 1}]  # the lockout counter: one failed logon, on the refusing server
    assert result.exit_code == EXIT_BLIND
    assert result.failed() and all("mbx5" in n for n in result.failed()), sorted(result.failed())
    assert all(ELSEWHERE in m for m in result.messages.values())
    passed = {n for n, o in result.outcomes.items() if o == "passed"}
    for name in SERVERS:  # each healthy server's own checks (a per-server check's id is the server's name)
        assert any(n.endswith(f"[{name}]") for n in passed), name
    assert not any(n.endswith("[mbx5]") for n in passed)


def test_a_nightly_with_a_wrong_password_is_two_failed_logons_and_fails_everywhere(run_checks, monkeypatch) -> None:
    from dagcheck.lab import embedded
    from dagcheck.safety import EXIT_BLIND

    counts: list[dict[str, int]] = []
    stop = embedded.EmbeddedLab.stop
    real_endpoints = embedded.EmbeddedLab.endpoints

    def wrong_password(self: Any, servers: Any) -> Any:
        found, creds = real_endpoints(self, servers)
        return found, {n: dataclasses.replace(c, password="not-the-password") for n, c in creds.items()}

    monkeypatch.setattr(embedded.EmbeddedLab, "endpoints", wrong_password)
    monkeypatch.setattr(embedded.EmbeddedLab, "stop", lambda self: (counts.append(dict(self.wire.failed_logons)), stop(self)))
    result = run_checks(_five_servers([]))
    assert len(counts) == 1 and sum(counts[0].values()) == 2 and len(counts[0]) == 2, counts
    assert result.exit_code == EXIT_BLIND
    assert not any(o == "passed" for o in result.outcomes.values())
    assert all("authentication failed" in m and ELSEWHERE not in m for m in result.messages.values())


# ---- Kerberos: a refused ticket is that server's failure (issue 24, item 11) --------------------------


def test_a_kerberos_refusal_fails_only_that_server_and_moves_no_logon_rule() -> None:
    """The decision itself (no KDC needed): a server that refuses the Kerberos ticket (e.g. a wrong SPN for
    it) is blind; the others keep Kerberos for the run, and no account is withdrawn. The full path against
    a real KDC is in tests/lab/wire/test_auth_encryption.py."""
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    assert {s.connection.auth for s in inventory.servers} == {"kerberos"}  # the inventory default
    transport = PsrpTransport({s.name: s for s in inventory.servers})
    error = transport._rejected(transport.servers["mbx2"], "connect", "access denied (HTTP 401)")
    assert "on mbx2" in error.reason and "only this server is affected" in error.reason
    for name in ("mbx1", "mbx3", "mbx4"):
        transport._refuse_if_blind(transport.servers[name], "connect")  # raises if Kerberos were withdrawn
    assert set(transport.states.blind()) == {"mbx2"}
    assert not transport._refused  # nothing counted against an account
