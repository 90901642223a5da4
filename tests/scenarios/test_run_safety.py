"""Safety of one run against shared, fallible servers (issue 9, the client side): misuse refused before
anything is sent, at most two failed logons per account per run (issue 24: a refusal is proven on a second
server before the account is withdrawn), one timeout per hung server, exit codes that
tell an unhealthy DAG from a blind run, progress visible without -s, and one refusal instead of dozens.

Everything runs on loopback against the lab; timeouts are seconds.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from typing import Any

import pytest

from dagcheck.errors import ConnectionFailed
from dagcheck.lab.embedded import lab_connection
from dagcheck.remote import credentials as credentials_module
from dagcheck.remote.base import Command, Endpoint
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.psrp import PsrpTransport
from tests.conftest import check_run_args, lab_data
from tests.processes import budget, spawn

SERVERS = ("mbx1", "mbx2", "mbx3", "mbx4")
READS = [
    Command.of("Get-MailboxServer", Identity="{s}"),
    Command.of("Get-ServerComponentState", Identity="{s}"),
    Command.of("Get-Queue", Server="{s}"),
    Command.of("Get-MailboxDatabaseCopyStatus", Server="{s}"),
]


def _servers(lab: Any, **connection: Any) -> dict[str, Any]:
    inventory, _, server = lab
    return {
        s.name: dataclasses.replace(
            s,
            connection=dataclasses.replace(
                lab_connection(s.connection, server.exchange_uri(s.name), server.windows_uri(s.name)), **connection
            ),
        )
        for s in inventory.servers
    }


def _read(name: str, command: Command) -> Command:
    return Command(command.cmdlet, tuple((k, v.format(s=name)) for k, v in command.parameters))


def _sweep(transport: PsrpTransport) -> dict[str, str]:
    """What a nightly collection does: every source on every server, and each failure's text."""
    out: dict[str, str] = {}
    for name in SERVERS:
        for command in READS:
            for endpoint in (Endpoint.EXCHANGE,):
                try:
                    transport.run(name, endpoint, _read(name, command))
                    out[f"{name} {command.cmdlet}"] = "ok"
                except ConnectionFailed as exc:
                    out[f"{name} {command.cmdlet}"] = str(exc.reason)
        try:
            transport.run(name, Endpoint.WINDOWS, Command.of("Get-ClusterNode"))
        except ConnectionFailed as exc:
            out[f"{name} Get-ClusterNode"] = str(exc.reason)
    return out


# ---- at most two failed logons per account per run -------------------------------------------------


def test_a_wrong_password_costs_two_failed_logons_and_one_prompt(lab, monkeypatch) -> None:
    """No password in the environment: dagcheck prompts (once for the account), the password is wrong;
    the lab counts two failed logons in the whole run (the first server's, and the second server's that
    proves the password wrong: issue 24 item 2 changed this from one), and every source of every server
    fails with that one reason, without being sent."""
    _, _, server = lab
    prompts: list[str] = []
    monkeypatch.setenv("DAGCHECK_TEST_USER", server.credentials.username)
    monkeypatch.delenv("DAGCHECK_TEST_PASSWORD", raising=False)
    monkeypatch.setattr(credentials_module.sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(credentials_module.getpass, "getpass", lambda text: prompts.append(text) or "wrong")
    transport = PsrpTransport(_servers(lab, username_env="DAGCHECK_TEST_USER", password_env="DAGCHECK_TEST_PASSWORD"))
    try:
        results = _sweep(transport)
    finally:
        transport.close()
    assert len(prompts) == 1, prompts
    assert server.failed_logons == {"mbx1": 1, "mbx2": 1}, server.failed_logons
    reasons = set(results.values())
    assert len(reasons) == 1 and "authentication failed" in reasons.pop()
    assert len(transport.transcript.invocations) == 1  # the rest was never sent
    assert {b.kind for b in transport.states.blind().values()} == {"authentication"}
    assert set(transport.states.blind()) == set(SERVERS)


def test_a_good_password_is_prompted_once_for_every_server_and_endpoint(lab, monkeypatch) -> None:
    _, _, server = lab
    prompts: list[str] = []
    monkeypatch.setenv("DAGCHECK_TEST_USER", server.credentials.username)
    monkeypatch.delenv("DAGCHECK_TEST_PASSWORD", raising=False)
    monkeypatch.setattr(credentials_module.sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(credentials_module.getpass, "getpass", lambda text: prompts.append(text) or server.credentials.password)
    transport = PsrpTransport(_servers(lab, username_env="DAGCHECK_TEST_USER", password_env="DAGCHECK_TEST_PASSWORD"))
    try:
        results = _sweep(transport)
        transport.run_cmd("mbx3", "sc.exe query MSExchangeTransport")
    finally:
        transport.close()
    assert set(results.values()) == {"ok"}
    assert len(prompts) == 1 and server.failed_logons == {}
    assert not transport.states.blind()


def test_a_server_that_rejects_a_proven_account_fails_alone(lab) -> None:
    """auth_rejected on mbx2 (its own authentication broken, or missing rights there): the account has
    already logged on to mbx1, so mbx2's refusal is mbx2's failure only (issue 24 item 2; this test used to
    assert that the account was withdrawn everywhere), and mbx2 is not tried again."""
    _, org, server = lab
    from dagcheck.lab.settings import Fault

    org.runtime_faults.append(Fault("auth_rejected", {"server": "mbx2"}))
    creds = {n: Credentials(server.credentials.username, server.credentials.password) for n in SERVERS}
    transport = PsrpTransport(_servers(lab), credentials=creds)
    try:
        first = _sweep(transport)
        again = _sweep(transport)
    finally:
        transport.close()
    assert server.failed_logons == {"mbx2": 1}
    for sweep in (first, again):
        assert all(v == "ok" for k, v in sweep.items() if not k.startswith("mbx2")), sweep
        assert all(
            "this server refused a credential that works elsewhere" in v and "logged on to mbx1" in v
            for k, v in sweep.items()
            if k.startswith("mbx2")
        ), sweep


# ---- fail fast on an unreachable or hung server --------------------------------------------------------


def test_a_refusing_server_is_tried_once_per_run(lab) -> None:
    _, _, server = lab
    servers = _servers(lab)
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/PowerShell"
    servers["mbx3"] = dataclasses.replace(
        servers["mbx3"],
        connection=dataclasses.replace(
            servers["mbx3"].connection, exchange_uri=dead, windows_uri=dead.replace("PowerShell", "wsman")
        ),
    )
    creds = {n: Credentials(server.credentials.username, server.credentials.password) for n in SERVERS}
    transport = PsrpTransport(servers, credentials=creds)
    try:
        results = _sweep(transport)
    finally:
        transport.close()
    mbx3 = {v for k, v in results.items() if k.startswith("mbx3")}
    assert len(mbx3) == 1 and "connection refused" in next(iter(mbx3))
    assert all(v == "ok" for k, v in results.items() if not k.startswith("mbx3"))
    assert len(transport.transcript.for_server("mbx3")) == 1
    assert transport.states.blind()["mbx3"].kind == "unreachable"


def test_a_hung_server_costs_one_read_timeout_per_run(lab) -> None:
    """A server that accepts connections and never answers (a hung IIS): the first call waits for the read
    timeout; every other call to it fails at once."""
    _, _, server = lab
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # connections complete in the backlog; nobody ever reads them
    port = hung.getsockname()[1]
    servers = _servers(lab)
    uri = f"http://127.0.0.1:{port}/PowerShell"
    servers["mbx2"] = dataclasses.replace(
        servers["mbx2"],
        connection=dataclasses.replace(
            servers["mbx2"].connection,
            exchange_uri=uri,
            windows_uri=uri.replace("PowerShell", "wsman"),
            operation_timeout=1,
            read_timeout=2,
        ),
    )
    creds = {n: Credentials(server.credentials.username, server.credentials.password) for n in SERVERS}
    transport = PsrpTransport(servers, credentials=creds)
    try:
        started = time.monotonic()
        results = _sweep(transport)
        spent = time.monotonic() - started
    finally:
        transport.close()
        hung.close()
    mbx2 = {v for k, v in results.items() if k.startswith("mbx2")}
    assert len(mbx2) == 1 and "timed out" in next(iter(mbx2))
    assert len(transport.transcript.for_server("mbx2")) == 1
    print(f"sweep with one hung server (read_timeout 2 s): {spent:.1f} s")


def test_a_stalled_cmdlet_is_stopped_after_one_operation_timeout(lab) -> None:
    """Get-Queue never finishes (slow_cmdlet 30 s, operation_timeout 1 s): the Receive long-polls would go
    on for ever; the call is stopped after one operation timeout, the server counts as hung."""
    _, org, server = lab
    from dagcheck.lab.settings import Fault

    org.runtime_faults.append(Fault("slow_cmdlet", {"server": "mbx4", "cmdlet": "Get-Queue", "seconds": 30}))
    creds = {n: Credentials(server.credentials.username, server.credentials.password) for n in SERVERS}
    transport = PsrpTransport(_servers(lab, operation_timeout=1, read_timeout=5), credentials=creds)
    try:
        assert transport.run("mbx4", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx4"))
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match="no answer to Get-Queue within 1 s"):
            transport.run("mbx4", Endpoint.EXCHANGE, Command.of("Get-Queue", Server="mbx4"))
        assert time.monotonic() - started < 4
        with pytest.raises(ConnectionFailed, match="no answer to Get-Queue"):  # the one reason, at once
            transport.run("mbx4", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx4"))
    finally:
        transport.close()
    assert len(transport.transcript.for_server("mbx4")) == 2


def test_a_hung_winrs_command_is_stopped_after_one_operation_timeout(lab) -> None:
    """sc.exe never finishes (fault slow_cmdlet on program sc, 30 s; operation_timeout 1 s): pypsrp's
    Process.end_invoke would long-poll for ever. The command is terminated after one operation timeout and
    the server counts as hung for the run, on every endpoint (PSRP included)."""
    _, org, server = lab
    from dagcheck.lab.settings import Fault

    org.runtime_faults.append(Fault("slow_cmdlet", {"server": "mbx4", "cmdlet": "sc", "seconds": 30}))
    creds = {n: Credentials(server.credentials.username, server.credentials.password) for n in SERVERS}
    transport = PsrpTransport(_servers(lab, operation_timeout=1, read_timeout=5), credentials=creds)
    try:
        assert transport.run_cmd("mbx4", "reg.exe query HKLM\\SOFTWARE\\Microsoft\\Updates").rc in (0, 1)
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match="did not finish within 1 s"):
            transport.run_cmd("mbx4", "sc.exe queryex type= service state= all")
        spent = time.monotonic() - started
        with pytest.raises(ConnectionFailed, match="did not finish within 1 s"):  # the one reason, at once
            transport.run_cmd("mbx4", "sc.exe queryex type= service state= all")
        with pytest.raises(ConnectionFailed, match="did not finish within 1 s"):
            transport.run("mbx4", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx4"))
        assert transport.run_cmd("mbx3", "sc.exe queryex type= service state= all").rc == 0  # the others are fine
    finally:
        transport.close()
    assert spent < 4, spent  # one operation timeout (1 s) and one HTTP timeout margin, not 30 s
    assert len(transport.transcript.for_server("mbx4")) == 2
    assert sum(1 for c in org.call_log if c[0].lower() == "mbx4" and c[1] == "winrs:sc") == 1
    shells = [s for s in server.open_shells("mbx4") if hasattr(s, "ready_at")]
    assert all(not s.results for s in shells)  # the hung command was terminated, not left running


def test_a_receive_with_no_answer_is_sent_once(lab) -> None:
    """A server that stops answering HTTP in the middle of a command: pypsrp would resend the Receive five
    times (with back-offs of up to 62 s between). It is sent once; its HTTP timeout is the verdict."""
    import xml.etree.ElementTree as ET

    import requests

    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(black_hole.accept()[0])  # kept open and never read: the request hangs
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    uri = f"http://127.0.0.1:{black_hole.getsockname()[1]}/wsman"
    servers = _servers(lab)
    servers["mbx1"] = dataclasses.replace(
        servers["mbx1"],
        connection=dataclasses.replace(servers["mbx1"].connection, windows_uri=uri, operation_timeout=1, read_timeout=2),
    )
    transport = PsrpTransport(servers, credentials={"mbx1": Credentials("u", "p")})
    wsman = transport._wsman(servers["mbx1"], Endpoint.WINDOWS)
    wsman.transport.reconnection_backoff = 0  # pypsrp's resends, if any, come at once (the test stays short)
    try:
        with pytest.raises(requests.exceptions.Timeout):
            wsman.receive("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd", ET.Element("Receive"), timeout=1)
        time.sleep(0.2)
    finally:
        transport.close()
        black_hole.close()
        for conn in accepted:
            conn.close()
    assert len(accepted) == 1, f"{len(accepted)} connections: the Receive was resent"


def test_a_hung_winrs_command_in_a_whole_run_costs_one_timeout(external, run_checks, capfd) -> None:
    """A whole run where mbx2's sc.exe hangs (slow_cmdlet on program sc, 60 s; operation_timeout 5 s):
    mbx2 is blind with the one reason, sc.exe ran once there, the others are judged, exit 8 or 9."""
    from dagcheck.lab.settings import Fault
    from dagcheck.safety import EXIT_BLIND, EXIT_UNHEALTHY_AND_BLIND

    data, org, server = external
    org.runtime_faults.append(Fault("slow_cmdlet", {"server": "mbx2", "cmdlet": "sc", "seconds": 60}))
    assert data["servers"][1]["name"] == "mbx2"
    data["servers"][1]["connection"].update(operation_timeout=5, read_timeout=10)
    started = time.monotonic()
    result = run_checks(data, "--phase", "preflight")  # HOST-004 reads sc.exe before maintenance
    spent = time.monotonic() - started
    assert result.exit_code in (EXIT_BLIND, EXIT_UNHEALTHY_AND_BLIND)
    out = capfd.readouterr().out.rstrip().splitlines()
    assert out[-1] == "dagcheck exit 8: BLIND (could not check mbx2: unreachable)"
    assert sum(1 for c in org.call_log if c[0].lower() == "mbx2" and c[1] == "winrs:sc") == 1
    mbx2 = {m for n, m in result.messages.items() if "mbx2" in n and "did not finish within 5 s" in m}
    assert mbx2, result.messages
    assert any(o == "passed" and "mbx1" in n for n, o in result.outcomes.items())
    print(f"whole run with a hung sc.exe on mbx2 (operation_timeout 5 s): {spent:.1f} s")


def _threads_done() -> None:
    for t in threading.enumerate():
        if t.name.startswith("dagcheck-"):
            t.join(1)


# ---- whole runs ------------------------------------------------------------------------------------


def test_unreachable_server_in_a_run_is_one_reason_and_a_blind_exit_code(run_checks) -> None:
    from dagcheck.safety import EXIT_BLIND

    result = run_checks(lab_data([{"kind": "dropped_connection", "server": "mbx3"}]))
    assert result.exit_code == EXIT_BLIND
    failed = result.failed()
    assert failed and all("mbx3" in n for n in failed)
    assert len(set(result.messages.values())) == 1, set(result.messages.values())
    # One attempt per lane already in flight side by side (connection.max_runspaces, 3 by default: the
    # per-server concurrency of issue 14), then nothing more is sent; it never grows with the sources.
    assert 1 <= sum(1 for c in result.calls if c[0] == "mbx3") <= 3


def test_a_server_rejecting_good_credentials_in_a_run_fails_alone(run_checks, monkeypatch) -> None:
    """Issue 24 item 2 changed this test's rule: mbx2 refuses an account the others accept, so only mbx2 is
    blind (it used to blind every server); it is still tried once."""
    from dagcheck.lab import embedded
    from dagcheck.safety import EXIT_BLIND

    counts: list[dict[str, int]] = []
    stop = embedded.EmbeddedLab.stop
    monkeypatch.setattr(embedded.EmbeddedLab, "stop", lambda self: (counts.append(dict(self.wire.failed_logons)), stop(self)))
    result = run_checks(lab_data([{"kind": "auth_rejected", "server": "mbx2"}]))
    assert counts == [{"mbx2": 1}]
    assert result.exit_code == EXIT_BLIND
    assert result.failed() and all("mbx2" in n for n in result.failed()), result.failed()
    assert all("this server refused a credential that works elsewhere" in m for m in result.messages.values())


# ---- against a lab that runs on its own (the call log and failed logons are the lab's) -------------------


@pytest.fixture
def external(lab, monkeypatch):
    """An inventory that points at a running lab (no lab: section): dagcheck connects to it as to real
    servers, with credentials from the environment."""
    from dagcheck.lab.persist import PASSWORD_ENV, USERNAME_ENV, inventory_for

    _, org, server = lab
    monkeypatch.setenv(USERNAME_ENV, server.credentials.username)
    monkeypatch.setenv(PASSWORD_ENV, server.credentials.password)
    data = inventory_for(lab_data(), server.exchange_uri, server.windows_uri, None, "basic")
    return data, org, server


MISUSE = [
    (
        "target_is_server",
        ["--phase", "maintenance", "--server", "mbx1", "--target", "mbx1", "--apply"],
        "--target mbx1 is the server entering maintenance",
    ),
    (
        "target_in_no_dag",
        ["--phase", "maintenance", "--server", "mbx1", "--target", "mbx9", "--apply"],
        "--target mbx9 is in no DAG, mbx1 in DAG DAG1",
    ),
    (
        "apply_without_change",
        ["--phase", "preflight", "--server", "mbx1", "--apply"],
        "--apply with --phase preflight has nothing to apply",
    ),
    ("apply_health", ["--apply"], "--apply with --phase health has nothing to apply"),
    (
        "cycle_with_phase",
        ["--cycle", "--phase", "maintenance", "--server", "mbx1"],
        "--cycle runs pre-flight, maintenance and post-maintenance itself: drop --phase maintenance",
    ),
    ("postflight_apply_all", ["--phase", "postflight", "--apply"], "--phase postflight --apply acts on one server"),
]


@pytest.mark.parametrize("args,message", [m[1:] for m in MISUSE], ids=[m[0] for m in MISUSE])
def test_misuse_is_refused_before_anything_is_sent(external, run_checks, capfd, args, message) -> None:
    data, org, server = external
    data["servers"].append(
        {"name": "mbx9", "fqdn": "mbx9.lab.contoso.test", "site": "Site-A", "connection": dict(data["servers"][0]["connection"])}
    )
    result = run_checks(data, *args)
    err = capfd.readouterr().err
    assert result.exit_code == 4, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert org.call_log == [] and server.failed_logons == {} and not result.calls


def test_a_wrong_password_in_a_whole_run_is_two_failed_logons(external, run_checks, monkeypatch) -> None:
    """Two, not one, since issue 24 item 2: the second proves the password wrong, not the first server."""
    from dagcheck.lab.persist import PASSWORD_ENV
    from dagcheck.safety import EXIT_BLIND

    data, org, server = external
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    result = run_checks(data)
    assert sum(server.failed_logons.values()) == 2 and len(server.failed_logons) == 2, server.failed_logons
    assert result.exit_code == EXIT_BLIND
    assert org.call_log == []  # not one cmdlet ran: the pools never opened
    # The client's transcript may also hold the calls that were waiting on their lanes (connection.max_runspaces,
    # 3 per server) when the rejection came, refused locally without a logon: the lab's counters above are the
    # proof that nothing more reached a server.
    assert sum(1 for i in result.calls) <= 4 * 3
    assert result.failed() and all("authentication failed" in m for m in result.messages.values())


def test_a_hung_server_in_a_whole_run_costs_one_timeout(external, run_checks, capfd) -> None:
    """mbx3 accepts connections and never answers; read_timeout 10 s. Every mbx3 check fails with the one
    reason, the reason is printed once, the others are judged, and the run is blind (exit 8 or 9)."""
    from dagcheck.safety import EXIT_BLIND, EXIT_UNHEALTHY_AND_BLIND

    data, org, server = external
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    uri = f"http://127.0.0.1:{hung.getsockname()[1]}"
    conn = data["servers"][2]["connection"]
    assert data["servers"][2]["name"] == "mbx3"
    conn.update(exchange_uri=f"{uri}/PowerShell", windows_uri=f"{uri}/wsman", operation_timeout=5, read_timeout=10)
    try:
        started = time.monotonic()
        result = run_checks(data)
        spent = time.monotonic() - started
    finally:
        hung.close()
    captured = capfd.readouterr()
    out = captured.out
    assert result.exit_code in (EXIT_BLIND, EXIT_UNHEALTHY_AND_BLIND), captured.err
    assert 1 <= sum(1 for c in result.calls if c[0] == "mbx3") <= 3  # the lanes in flight at once, no more
    mbx3 = {m for n, m in result.messages.items() if "mbx3" in n and "timed out" in m}
    assert len(mbx3) == 1
    assert out.count("treated as unreachable for the rest of this run") <= 2  # live once, the summary once
    assert "COULD NOT CHECK mbx3 (unreachable)" in out
    assert any(o == "passed" and "mbx1" in n for n, o in result.outcomes.items())
    print(f"whole run with one hung server (read_timeout 10 s): {spent:.1f} s")


def test_unhealthy_and_blind_says_both(run_checks, capfd) -> None:
    from dagcheck.safety import EXIT_UNHEALTHY_AND_BLIND

    result = run_checks(
        lab_data([{"kind": "dropped_connection", "server": "mbx3"}, {"kind": "poison_messages", "server": "mbx1"}]),
        "--strict-warnings",
    )
    out = capfd.readouterr().out.rstrip().splitlines()
    assert result.exit_code == EXIT_UNHEALTHY_AND_BLIND
    assert out[-1] == "dagcheck exit 9: UNHEALTHY (1 check(s) failed) and BLIND (could not check mbx3: unreachable)"


def test_no_check_selected_keeps_pytest_exit_5(run_checks) -> None:
    result = run_checks(lab_data(), "-k", "no_such_check_anywhere")
    assert result.exit_code == 5 and not result.outcomes


def test_an_invalid_inventory_is_pytest_usage_exit_4(run_checks, capfd) -> None:
    data = lab_data()
    data["servers"][0].setdefault("connection", {})["operation_timeout"] = 2
    result = run_checks(data)
    err = capfd.readouterr().err
    assert result.exit_code == 4 and not result.calls
    assert "servers[0].connection.operation_timeout: 2 is below the minimum 5" in err


def test_an_internal_error_keeps_pytest_exit_3(run_checks) -> None:
    """A bug (here: a hook that raises) is pytest's INTERNALERROR, exit 3; the verdict does not turn it into
    0, 1, 8 or 9."""

    class Broken:
        def pytest_collection_modifyitems(self, items: list) -> None:
            raise RuntimeError("a bug")

    assert run_checks(lab_data(), plugins=(Broken(),)).exit_code == 3


# ---- progress without -s, and Ctrl-C --------------------------------------------------------------------


def _start(tmp_path, faults: list[dict], *args: str, env: dict[str, str] | None = None):
    import os
    import subprocess
    import sys

    import yaml

    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(lab_data(faults)), encoding="utf-8")
    cmd = [sys.executable, "-u", "-m", "pytest", *check_run_args(inv, tmp_path / "reports", *args)]
    return spawn(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env={**os.environ, **(env or {})}
    )


def _lines_until(proc, wanted: str, timeout: float = 120) -> list[str]:
    """Read the run's output line by line until `wanted` shows; the process must still be running then.

    The lines are read by a thread into a queue, so a child that stops writing (a deadlock) fails this
    test after `timeout` instead of hanging it on readline."""
    import queue

    lines: queue.Queue[str | None] = getattr(proc, "_dagcheck_lines", None) or queue.Queue()
    if not hasattr(proc, "_dagcheck_lines"):
        proc._dagcheck_lines = lines
        proc._dagcheck_reader = threading.Thread(
            target=lambda: ([lines.put(line) for line in iter(proc.stdout.readline, "")], lines.put(None)), daemon=True
        )
        proc._dagcheck_reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + budget(timeout)
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line.rstrip("\n"))
        if wanted in line:
            return seen
    raise AssertionError(f"{wanted!r} never showed:\n" + "\n".join(seen[-40:]))


def _rest(proc, timeout: float) -> str:
    """Everything the run still writes, once it has ended (the reader thread of _lines_until owns stdout)."""
    proc.wait(timeout=budget(timeout))
    proc._dagcheck_reader.join(timeout=budget(10))
    out: list[str] = []
    while not proc._dagcheck_lines.empty():
        line = proc._dagcheck_lines.get()
        if line is not None:
            out.append(line)
    return "".join(out)


def test_transition_steps_and_a_slow_call_show_while_the_run_goes_on(tmp_path) -> None:
    """Without -s: each step and each command shows as it happens (read while the process still runs),
    and a slow call (Get-DatabaseAvailabilityGroup, 1.5 s; a call is shown once it has taken 0.5 s here, 3 s
    by default) says what it waits for and how long it may take."""
    from dagcheck.maintenance.live import SHOW_AFTER_ENV

    proc = _start(
        tmp_path,
        [{"kind": "slow_cmdlet", "server": "mbx1", "cmdlet": "Get-DatabaseAvailabilityGroup", "seconds": 1.5}],
        "--phase",
        "maintenance",
        "--server",
        "mbx1",
        "--apply",
        env={SHOW_AFTER_ENV: "0.5"},
    )
    try:
        seen = _lines_until(proc, "still waiting for mbx1: Get-DatabaseAvailabilityGroup -Status")
        assert proc.poll() is None
        seen += _lines_until(proc, "ran Set-ServerComponentState -Identity mbx1 -Component HubTransport -State Draining")
        assert proc.poll() is None  # shown live, not in the summary at the end
        assert any("gives up in" in line for line in seen)
        rest = _rest(proc, timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, rest[-3000:]


def test_ctrl_c_stops_at_a_safe_point_with_one_line(tmp_path) -> None:
    import json
    import signal

    # Slow reads keep the transition busy long enough to press Ctrl-C in the middle of it.
    proc = _start(
        tmp_path,
        [{"kind": "slow_cmdlet", "server": "mbx1", "cmdlet": "Get-Queue", "seconds": 0.3}],
        "--phase",
        "maintenance",
        "--server",
        "mbx1",
        "--apply",
    )
    try:
        _lines_until(proc, "ran Set-ServerComponentState -Identity mbx1 -Component HubTransport -State Draining")
        proc.send_signal(signal.SIGINT)
        out = _rest(proc, timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-3000:]
    stops = [line for line in out.splitlines() if "Interrupted: entering maintenance on mbx1 stopped" in line]
    assert len(stops) == 1, out[-3000:]
    assert "pytest --phase maintenance --server mbx1 --apply" in stops[0]
    assert "pytest --phase postflight --server mbx1 --apply" in stops[0]
    journal = [json.loads(line) for line in (tmp_path / "reports" / "journal-mbx1.jsonl").read_text().splitlines()]
    assert any(e["event"] == "interrupted" for e in journal)
    assert not any(e["event"] == "transition_completed" for e in journal)


def test_ctrl_c_handler_does_no_io_while_a_progress_write_holds_its_lock() -> None:
    """The deadlock behind a hung Ctrl-C: SIGINT arrived while the main thread was inside a progress write
    (holding its plain Lock) and the handler wrote the notice through the same lock. The handler now only
    sets a flag; the notice comes from the watcher thread once the write is over."""
    from dagcheck.maintenance.controller import SafeStop

    held = threading.Lock()
    written: list[str] = []

    def progress(line: str) -> None:
        if not held.acquire(timeout=1):  # a plain Lock taken again by its own thread: the deadlock
            written.append("deadlock: " + line)
            return
        try:
            written.append(line)
        finally:
            held.release()

    stop = SafeStop(progress)
    with stop:
        with held:  # the main thread is in the middle of a progress write
            started = time.monotonic()
            stop._handler(2, None)  # what SIGINT runs on this thread, between two bytecodes
            assert time.monotonic() - started < 0.5
            assert written == []  # nothing written from inside the handler
        deadline = time.monotonic() + 5
        while not written and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stop.requested()
    assert written == [SafeStop.NOTICE]  # said once, by the watcher or the first safe point
    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C stops at once
        stop._handler(2, None)


def _journal(path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_ctrl_c_during_entry_then_roll_back_or_resume(tmp_path) -> None:
    """Against a persistent lab, as separate processes: Ctrl-C during entry exits 2 with one line naming both
    commands and journals `interrupted`; `--phase postflight --apply` then returns the server to full service;
    after a second Ctrl-C, `--phase maintenance --apply` continues from where it stood and completes."""
    import json
    import signal

    import yaml

    from dagcheck.lab import persist
    from dagcheck.lab.settings import Fault
    from tests.scenarios.test_dag_lease import LabProcess, assert_full_service, finish, signs

    source = tmp_path / "lab-source.yml"  # slow reads keep the transition busy long enough to press Ctrl-C
    source.write_text(
        yaml.safe_dump(lab_data([{"kind": "slow_cmdlet", "server": "mbx1", "cmdlet": "Get-Queue", "seconds": 0.3}])),
        encoding="utf-8",
    )
    lab = LabProcess(tmp_path, source).start()
    journal = tmp_path / "reports" / "journal-mbx1.jsonl"
    enter = ("--phase", "maintenance", "--server", "mbx1", "--target", "mbx2", "--apply")

    def interrupted_entry() -> str:
        proc = lab.dagcheck(*enter)
        try:
            _lines_until(proc, "ran Set-ServerComponentState -Identity mbx1 -Component HubTransport -State Draining")
            proc.send_signal(signal.SIGINT)
            out = _rest(proc, timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 2, out[-3000:]
        assert "Traceback" not in out, out[-3000:]
        stops = [line for line in out.splitlines() if "Interrupted: entering maintenance on mbx1 stopped" in line]
        assert len(stops) == 1 and "--phase postflight --server mbx1 --apply" in stops[0], out[-3000:]
        print(stops[0])
        assert _journal(journal)[-1]["event"] == "interrupted"
        assert signs(lab.org(), "mbx1"), "the claim (HubTransport Draining) stays until resumed or rolled back"
        return out

    slow = Fault("slow_cmdlet", {"server": "mbx1", "cmdlet": "Get-Queue", "seconds": 0.3})

    def slow_reads(on: bool) -> None:
        """Restart the lab on its saved state with the slow reads on or off: only the runs that are interrupted
        need them; the roll-back and the resume then run at the lab's own pace."""
        lab.stop()  # the lab saves its state when it stops
        data = json.loads(lab.state.read_text(encoding="utf-8"))
        org = persist.restore(data)
        org.runtime_faults = [f for f in org.runtime_faults if f.kind != "slow_cmdlet"] + ([slow] if on else [])
        persist.write_atomically(lab.state, json.dumps({**data, **persist.dump(org)}))
        lab.start()

    try:
        interrupted_entry()
        slow_reads(False)
        rc, out = finish(lab.dagcheck("--phase", "postflight", "--server", "mbx1", "--apply"))
        assert rc == 0, out[-3000:]
        assert_full_service(lab.org(), "mbx1")

        slow_reads(True)
        interrupted_entry()
        slow_reads(False)
        rc, out = finish(lab.dagcheck(*enter))
        assert rc == 0, out[-3000:]
        assert "did not finish" in out, out[-3000:]  # it says where it stands, then continues
        assert "ServerWideOffline Inactive" in signs(lab.org(), "mbx1")
        entries = _journal(journal)
        last_interrupt = max(i for i, e in enumerate(entries) if e["event"] == "interrupted")
        assert any(e["event"] == "transition_completed" and e["direction"] == "enter" for e in entries[last_interrupt:])
        rc, out = finish(lab.dagcheck("--phase", "postflight", "--server", "mbx1", "--apply"))
        assert rc == 0, out[-3000:]
        assert_full_service(lab.org(), "mbx1")
    finally:
        lab.stop()
