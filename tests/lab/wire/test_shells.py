"""Shells end on real servers, and quotas refuse new ones: dagcheck's verdict and retry for each, and no
shell of dagcheck's left on the lab afterwards.

Faults injected (dagcheck/lab/faults.py, answered by dagcheck/lab/server.py): runspace_quota,
shell_quota, throttled, app_pool_recycle, idle_timeout, reboot; and the lab's own controls
(recycle_app_pool, expire_idle_shells, reboot).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from dagcheck.errors import ConnectionFailed, OutcomeUnknown, Throttled
from dagcheck.lab.embedded import lab_connection
from dagcheck.lab.psrp import pipeline_threads_of
from dagcheck.lab.server import LabServer
from dagcheck.lab.settings import Fault
from dagcheck.remote.base import CmdResult, Command, Endpoint, Transport
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.psrp import PsrpTransport
from tests.conftest import lab_data
from tests.processes import until

READ = Command.of("Get-MailboxServer", Identity="mbx1")
CHANGE = Command.of(
    "Set-ServerComponentState", Identity="mbx1", Component="HubTransport", State="Draining", Requester="Maintenance"
)


def _transport(lab: Any, **connection: Any) -> PsrpTransport:
    inventory, _, server = lab
    servers = {
        s.name: dataclasses.replace(
            s,
            connection=dataclasses.replace(
                lab_connection(s.connection, server.exchange_uri(s.name), server.windows_uri(s.name)), **connection
            ),
        )
        for s in inventory.servers
    }
    creds = {n: Credentials(server.credentials.username, server.credentials.password) for n in servers}
    return PsrpTransport(servers, credentials=creds, throttle_retries=2, backoff=0.05, reconnect_delay=0.2)


def _other_session(server: LabServer, name: str = "mbx1") -> RunspacePool:
    """Another admin session of the same account (a forgotten Exchange Management Shell)."""
    wsman = WSMan(
        "127.0.0.1",
        port=server.port(name),
        path="PowerShell",
        ssl=False,
        auth="basic",
        username=server.credentials.username,
        password=server.credentials.password,
        encryption="never",
    )
    pool = RunspacePool(wsman, configuration_name="Microsoft.Exchange")
    pool.open()
    return pool


def _wait_until_up(server: LabServer, name: str) -> None:
    deadline = time.monotonic() + 10
    while server.is_down(name) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_runspace_quota_fault_gives_throttled_not_unreachable_then_frees(lab) -> None:
    _, org, server = lab
    org.runtime_faults.append(Fault("runspace_quota", {"server": "mbx1", "count": 1}))
    other = _other_session(server)
    transport = _transport(lab)
    try:
        with pytest.raises(Throttled, match="allowed a maximum of 1 concurrent shells") as exc:
            transport.run("mbx1", Endpoint.EXCHANGE, READ)
        assert not isinstance(exc.value, ConnectionFailed)
        assert transport.transcript.invocations[-1].outcome == "throttled"
        # The other session closes while dagcheck backs off: the retry gets the runspace.
        transport.throttle_retries, transport.backoff = 5, 0.2
        threading.Timer(0.1, other.close).start()
        assert transport.run("mbx1", Endpoint.EXCHANGE, READ)
    finally:
        transport.close()
    assert not server.open_shells()


def test_shell_quota_fault_on_the_windows_endpoint_is_throttled(lab) -> None:
    _, org, server = lab
    org.runtime_faults.append(Fault("shell_quota", {"server": "mbx2", "count": 1}))
    transport = _transport(lab)
    try:
        assert transport.run("mbx2", Endpoint.WINDOWS, Command.of("Get-ClusterNode"))  # the one shell allowed
        blocked = _transport(lab)
        with pytest.raises(Throttled, match="allowed a maximum number of 1 concurrent shells"):
            blocked.run_cmd("mbx2", "sc.exe query MSExchangeTransport")
        blocked.close()
    finally:
        transport.close()
    assert not server.open_shells()


def test_the_budget_keeps_dagcheck_within_max_runspaces(lab) -> None:
    """With max_runspaces 1 and the server's quota at 1, dagcheck closes its idle shell before the next."""
    _, org, server = lab
    org.runtime_faults.append(Fault("runspace_quota", {"server": "mbx3", "count": 1}))
    transport = _transport(lab, max_runspaces=1)
    seen: list[int] = []
    try:
        for _ in range(2):
            transport.run("mbx3", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx3"))
            seen.append(len(server.open_shells("mbx3")))
            transport.run("mbx3", Endpoint.WINDOWS, Command.of("Get-ClusterNode"))
            seen.append(len(server.open_shells("mbx3")))
            assert transport.run_cmd("mbx3", "sc.exe query MSExchangeTransport").rc == 0
            seen.append(len(server.open_shells("mbx3")))
    finally:
        transport.close()
    assert seen == [1] * 6 and not server.open_shells()


def test_app_pool_recycle_reopens_and_retries_a_read_once(lab) -> None:
    _, org, server = lab
    transport = _transport(lab)
    try:
        assert transport.run("mbx1", Endpoint.EXCHANGE, READ)
        before = {s.shell_id for s in server.open_shells("mbx1")}
        assert server.recycle_app_pool("mbx1") == 1
        assert transport.run("mbx1", Endpoint.EXCHANGE, READ)  # reopened, asked again
        after = {s.shell_id for s in server.open_shells("mbx1")}
        assert len(after) == 1 and not after & before
        assert [i.outcome for i in transport.transcript.invocations] == ["ok", "ok"]
        assert sum(1 for c in org.call_log if c[1] == "Get-MailboxServer") == 2
    finally:
        transport.close()
    assert not server.open_shells()


def test_app_pool_recycle_fault_before_a_change_runs_it_once_on_a_new_shell(lab) -> None:
    """The recycle fault fires at the Command: the shell is gone before the change was created, so it
    certainly did not run and may be sent again."""
    _, org, server = lab
    org.runtime_faults.append(Fault("app_pool_recycle", {"server": "mbx1", "count": 2}))
    transport = _transport(lab)
    try:
        transport.run("mbx1", Endpoint.EXCHANGE, READ)
        transport.run("mbx1", Endpoint.EXCHANGE, CHANGE)
    finally:
        transport.close()
    assert [c[1] for c in org.call_log].count("Set-ServerComponentState") == 1
    assert not server.open_shells()


def test_idle_timeout_fault_expires_the_shell_and_a_read_is_retried(lab) -> None:
    _, org, server = lab
    org.runtime_faults.append(Fault("idle_timeout", {"server": "mbx2", "seconds": 0.3}))
    transport = _transport(lab)
    read = Command.of("Get-MailboxServer", Identity="mbx2")
    try:
        assert transport.run("mbx2", Endpoint.EXCHANGE, read)
        time.sleep(0.5)  # longer than the shell's IdleTimeOut
        assert transport.run("mbx2", Endpoint.EXCHANGE, read)
        assert server.expire_idle_shells("mbx2", idle_for=0) == 1  # the lab's own control: expire now
        assert transport.run("mbx2", Endpoint.EXCHANGE, read)
    finally:
        transport.close()
    assert not server.open_shells()


def test_reboot_fault_during_a_read_reconnects_after_the_restart(lab) -> None:
    _, org, server = lab
    org.runtime_faults.append(Fault("reboot", {"server": "mbx4", "count": 2, "seconds": 0.3}))
    transport = _transport(lab)
    transport.reconnect_delay = 1.0
    read = Command.of("Get-MailboxServer", Identity="mbx4")
    try:
        assert transport.run("mbx4", Endpoint.EXCHANGE, read)
        assert transport.run("mbx4", Endpoint.EXCHANGE, read)  # the reboot hit this one; retried after it
    finally:
        transport.close()
    assert not server.is_down("mbx4") and not server.open_shells()


def test_reboot_longer_than_the_retry_gives_unreachable(lab) -> None:
    _, _, server = lab
    transport = _transport(lab)
    read = Command.of("Get-MailboxServer", Identity="mbx4")
    try:
        assert transport.run("mbx4", Endpoint.EXCHANGE, read)
        server.reboot("mbx4", 30)
        # The dropped pool is reopened once (after reconnect_delay); the port still refuses it.
        with pytest.raises(ConnectionFailed, match="connection refused"):
            transport.run("mbx4", Endpoint.EXCHANGE, read)
        assert transport.transcript.invocations[-1].outcome == "unreachable"
    finally:
        transport.close()
    assert not server.open_shells()


def test_reboot_under_a_change_is_outcome_unknown_and_not_repeated(lab) -> None:
    _, org, server = lab
    org.runtime_faults.append(Fault("reboot", {"server": "mbx1", "count": 2, "seconds": 0.3}))
    transport = _transport(lab)
    try:
        transport.run("mbx1", Endpoint.EXCHANGE, READ)
        with pytest.raises(OutcomeUnknown, match="may or may not have run"):
            transport.run("mbx1", Endpoint.EXCHANGE, CHANGE)
        assert sum(1 for c in org.call_log if c[1] == "Set-ServerComponentState") == 0  # sent once, never again
        _wait_until_up(server, "mbx1")
        assert transport.run("mbx1", Endpoint.EXCHANGE, READ)  # re-verify by reading, after the restart
    finally:
        transport.close()
    assert not server.open_shells()


def test_no_shell_is_left_open_after_a_run_with_faults(run_checks, monkeypatch) -> None:
    """The nightly health with an app-pool recycle, a throttled cmdlet and a reboot: every check still
    passes (the reads were retried), and the lab holds no shell once dagcheck has closed."""
    from dagcheck.lab import embedded
    from dagcheck.remote import psrp

    left: list[int] = []
    fired: dict[str, int] = {}
    stop = embedded.EmbeddedLab.stop

    def counting_stop(self: embedded.EmbeddedLab) -> None:
        left.append(len(self.wire.open_shells()))
        fired.update({f.kind: self.org.fault_hits.get(id(f), 0) for f in self.org.runtime_faults})
        stop(self)

    monkeypatch.setattr(embedded.EmbeddedLab, "stop", counting_stop)
    monkeypatch.setattr(psrp.PsrpTransport.__init__, "__defaults__", (None, None, 3, 0.05, 0.5))
    result = run_checks(
        lab_data(
            [
                {"kind": "app_pool_recycle", "server": "mbx1", "count": 4},
                {"kind": "throttled", "server": "mbx2", "cmdlet": "Get-Queue", "count": 1, "seconds": 0.05},
                {"kind": "reboot", "server": "mbx3", "count": 6, "seconds": 0.2},
            ]
        )
    )
    assert result.exit_code == 0, sorted(result.failed())
    assert fired["app_pool_recycle"] >= 4 and fired["throttled"] == 1 and fired["reboot"] >= 6  # they happened
    assert left == [0]


class _LosesTheAnswer(Transport):
    """A transport that loses the answer to one change (as a reboot under it would): the change ran, or
    did not, and the caller only gets OutcomeUnknown."""

    def __init__(self, inner: Transport, cmdlet: str, runs: bool) -> None:
        super().__init__(inner.transcript)
        self.inner, self.cmdlet, self.runs, self.fired = inner, cmdlet, runs, False

    def run(self, server: str, endpoint: Endpoint, command: Command) -> list[Any]:
        if command.cmdlet == self.cmdlet and not self.fired:
            self.fired = True
            if self.runs:
                self.inner.run(server, endpoint, command)
            raise OutcomeUnknown(server, command.cmdlet, "connection dropped by the server; it may or may not have run")
        return self.inner.run(server, endpoint, command)

    def run_cmd(self, server: str, command_line: str) -> CmdResult:
        return self.inner.run_cmd(server, command_line)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("ran", [True, False])
def test_a_change_with_unknown_outcome_is_verified_by_reading_not_repeated(tmp_path, ran) -> None:
    from dagcheck.maintenance.live import Live
    from tests.unit.maintenance.test_runner import Lab

    lab = Lab(tmp_path)
    lossy = _LosesTheAnswer(lab.transport, "Suspend-ClusterNode", runs=ran)
    lab.live = Live(lossy, lab.inventory.expectations)
    result = lab.transition("enter").run()
    suspends = [c for c in lab.org.call_log if c[1] == "Suspend-ClusterNode"]
    assert lossy.fired and len(suspends) == (1 if ran else 0)  # never sent a second time
    if ran:
        assert result.ok, result.error
        lab.assert_in_maintenance()
    else:
        assert not result.ok and "reading back shows it did not take effect" in (result.error or "")
    events = [line for line in lab.journal.path.read_text().splitlines() if "outcome_unknown" in line]
    assert len(events) == 1


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in the main thread, as a terminal's Ctrl-C does in an interactive run.
    A suite started in the background (`cmd &` from a script, cron, nohup) inherits SIGINT ignored, and Python
    then installs no handler: the signal these tests send would be dropped and they would prove nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_a_command_still_closes_every_shell(lab, ctrl_c_raises) -> None:
    """Ctrl-C (SIGINT to the main thread, KeyboardInterrupt there) while a slow cmdlet runs: close() deletes
    the shells, and deleting the runspace pool stops the pipeline on the server too.

    The signal is sent to the main thread as a terminal's Ctrl-C reaches it: it interrupts the Receive the
    client is blocked in. (_thread.interrupt_main only raised once that Receive came back by itself, after
    the lab's operation timeout: 20 s of waiting for the same proof.)"""
    _, org, server = lab
    org.runtime_faults.append(Fault("slow_cmdlet", {"server": "mbx2", "cmdlet": "Get-Queue", "seconds": 30}))
    transport = _transport(lab)
    transport.run_cmd("mbx2", "sc.exe query MSExchangeTransport")
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main  # KeyboardInterrupt is raised in the main thread
    threading.Timer(0.5, signal.pthread_kill, args=(main, signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        transport.run("mbx2", Endpoint.EXCHANGE, Command.of("Get-Queue", Server="mbx2"))
    assert len(server.open_shells("mbx2")) == 2
    transport.close()
    assert not server.open_shells()
    until(
        "end of mbx2's stopped pipeline thread",
        lambda: not any(t.name.startswith(pipeline_threads_of("mbx2")) for t in threading.enumerate()),
        10,
    )
    assert not [c for c in org.call_log if c[1] == "Get-Queue"]  # stopped with its pool, never ran


def test_a_budget_that_never_frees_gives_a_throttled_verdict(run_checks, monkeypatch) -> None:
    """Fault throttled (more refusals than retries) on mbx3's Get-Queue: the checks reading it fail with
    "throttled", the others pass, and no shell is left open."""
    from dagcheck.lab import embedded
    from dagcheck.remote import psrp

    left: list[int] = []
    stop = embedded.EmbeddedLab.stop
    monkeypatch.setattr(embedded.EmbeddedLab, "stop", lambda self: (left.append(len(self.wire.open_shells())), stop(self)))
    monkeypatch.setattr(psrp.PsrpTransport.__init__, "__defaults__", (None, None, 2, 0.05, 0.5))
    result = run_checks(lab_data([{"kind": "throttled", "server": "mbx3", "cmdlet": "Get-Queue", "count": 99, "seconds": 0.05}]))
    assert result.failed() and all("mbx3" in n for n in result.failed())
    assert all("throttled by the server" in m and "user load quota" in m for m in result.messages.values())
    assert not any("unreachable" in m for m in result.messages.values())
    assert left == [0]


def test_a_second_ctrl_c_while_closing_still_closes_the_others_and_names_what_is_left(lab, caplog, ctrl_c_raises) -> None:
    """Issue 24, item 14: the first Ctrl-C interrupts a slow cmdlet; while close() waits for mbx2's WinRS shell,
    whose Delete gets no answer (a server that does not answer, held here until the test lets it go), a second
    Ctrl-C arrives. close() used to close the shells one after another, so the second KeyboardInterrupt left the
    rest open without a word. Now every other shell is closed all the same, close() returns, and the one not
    confirmed closed is named with its server and ShellId."""
    import logging

    from dagcheck.remote import psrp_shells

    _, org, server = lab
    org.runtime_faults.append(Fault("slow_cmdlet", {"server": "mbx1", "cmdlet": "Get-Queue", "seconds": 30}))
    transport = _transport(lab)
    transport.run_cmd("mbx2", "sc.exe query MSExchangeTransport")
    transport.run("mbx3", Endpoint.EXCHANGE, Command.of("Get-MailboxServer", Identity="mbx3"))
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main
    threading.Timer(0.5, signal.pthread_kill, args=(main, signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        transport.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-Queue", Server="mbx1"))
    assert {s.server_name for s in server.open_shells()} == {"mbx1", "mbx2", "mbx3"}
    stuck_shell, _ = transport._cmd_shells["mbx2"]
    stuck_id = stuck_shell.id
    deleting, release = threading.Event(), threading.Event()
    real_close = stuck_shell.close

    def unanswered_delete() -> None:
        deleting.set()
        release.wait(60)
        real_close()

    stuck_shell.close = unanswered_delete  # type: ignore[method-assign]

    def second_ctrl_c() -> None:
        if deleting.wait(30):
            signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=second_ctrl_c, daemon=True).start()
    try:
        with caplog.at_level(logging.WARNING, logger="dagcheck.remote.psrp_shells"):
            try:
                transport.close()  # the second Ctrl-C ends the wait (it comes as the stuck Delete starts)
            except KeyboardInterrupt:
                pytest.fail("the second Ctrl-C escaped close(): the shells after the stuck one were never closed")
        # Named: the shell whose Delete got no answer (and any whose Delete was still on its way at that instant).
        left = transport.left_open
        assert f"mbx2 winrs shell {stuck_id}" in left
        assert any("interrupted again while closing" in r.getMessage() and stuck_id in r.getMessage() for r in caplog.records)
        # The other shells' Deletes went out beside it, so the second Ctrl-C did not keep them open.
        for _ in range(600):
            if [(s.server_name, s.shell_id) for s in server.open_shells()] == [("mbx2", stuck_id)]:
                break
            time.sleep(0.05)
        assert [(s.server_name, s.shell_id) for s in server.open_shells()] == [("mbx2", stuck_id)]
    finally:
        release.set()
    assert psrp_shells.CLOSE_SECONDS <= 10  # without a second Ctrl-C, close() gives up waiting within seconds
