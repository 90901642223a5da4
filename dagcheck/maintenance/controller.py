"""Where the pytest run meets the transitions: which phases a run checks, and the transition due before
each (enter before the maintenance checks, exit before the post-maintenance checks)."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pytest

from dagcheck import drift
from dagcheck.context import DagView
from dagcheck.errors import RemoteError
from dagcheck.maintenance import lease
from dagcheck.maintenance.interlocks import Refusal
from dagcheck.maintenance.journal import Journal
from dagcheck.maintenance.live import Live
from dagcheck.maintenance.runlock import LockBusy, RunLock
from dagcheck.maintenance.runner import Transition, TransitionResult, refuse_message
from dagcheck.rules.dag import in_maintenance
from dagcheck.session import DagcheckSession

PHASE_ORDER = ("health", "preflight", "maintenance", "postflight")


def run_phases(phase: str, cycle: bool) -> list[str]:
    """The phases whose checks one run executes, in order."""
    if cycle:
        return ["preflight", "maintenance", "postflight"]
    if phase == "maintenance":
        return ["preflight", "maintenance"]  # the gate first: only if it passes is maintenance entered
    return [phase]


@dataclass
class Controller:
    session: DagcheckSession
    server: str | None
    target: str | None
    phases: list[str]
    apply: bool
    force: bool
    reports_dir: str
    progress: Callable[[str], None]
    gate_failures: list[str] = field(default_factory=list)
    results: dict[str, TransitionResult] = field(default_factory=dict)
    signs_before: dict[str, list[str]] = field(default_factory=dict)

    def due(self, phase: str) -> str | None:
        """The transition to run before this phase's checks, if any."""
        if self.server is None:
            return None
        if phase == "maintenance":
            return "enter"
        if phase == "postflight":
            return "exit"
        return None

    def _signs(self) -> list[str]:
        assert self.server is not None
        live = Live(self.session.transport, self.session.inventory.expectations)
        try:
            return in_maintenance(
                self.server.lower(),
                live.read(self.server, "components"),
                live.read(self.server, "cluster_nodes"),
                live.one(self.server, "mailbox_server"),
            )
        except RemoteError:
            return ["state unreadable"]

    def resuming(self) -> str | None:
        """In a run that enters maintenance: the server already shows signs of maintenance (an interrupted
        run, or work done by hand). The pre-flight gate judges a server in service, so it is not applied;
        the transition's interlocks are, on fresh state."""
        if self.server is None or "maintenance" not in self.phases:
            return None
        if "enter" not in self.signs_before:
            self.signs_before["enter"] = self._signs()
        signs = self.signs_before["enter"]
        if not signs:
            return None
        return (
            f"{self.server} is already partly or fully in maintenance ({', '.join(signs)}): the pre-flight "
            "gate applies before entering; this run continues the transition and verifies it"
        )

    def before(self, phase: str) -> None:
        direction = self.due(phase)
        if direction is None or direction in self.results:
            return
        assert self.server is not None
        if direction == "exit" and "enter" in self.results and not self.results["enter"].ok:
            return  # a cycle whose entry was refused or stopped: leaving is the operator's call (blocked says how)
        view = DagView(self.server, self.session.inventory, self.session.collector, "preflight", self.target)
        target = self.target or (view.target() if direction == "enter" else None)
        stop = SafeStop(self.progress)
        transition = Transition(
            direction,
            self.server,
            target,
            Live(self.session.transport, self.session.inventory.expectations, progress=self.progress),
            self.session.inventory,
            Journal.for_server(self.reports_dir, self.server),
            apply=self.apply,
            force=self.force,
            gate_failures=self.gate_failures if direction == "enter" and not self.resuming() else [],
            progress=self.progress,
            stop_requested=stop.requested,
        )
        self.signs_before.setdefault(direction, self._signs())
        lock = RunLock.beside(transition.ctx.journal.path)
        try:
            if self.apply:
                lock.acquire()
            # A damaged journal is never a reason to stop: set aside (under the lock), said once, in the report.
            if (damaged := transition.ctx.journal.set_aside_if_damaged(self.server, move=self.apply)) is not None:
                self.progress(f"{self.server}: {damaged}")
                transition.ctx.notes.append(damaged)
            if direction == "enter":
                self._baseline(transition.ctx.notes, transition.ctx.journal)
            with stop:
                try:
                    self.results[direction] = result = transition.run()
                except KeyboardInterrupt:  # a second Ctrl-C: stopped in the middle of a command
                    transition.ctx.journal.append(
                        event="interrupted",
                        direction=direction,
                        where="in the middle of a command (second Ctrl-C)",
                        last_step_done=transition.last_step,
                    )
                    result = TransitionResult(
                        direction,
                        self.server.lower(),
                        target,
                        self.apply,
                        interrupted=True,
                        error="interrupted (Ctrl-C) in the middle of a command",
                    )
                    self.results[direction] = result
            if result.interrupted:
                lock.release()
                pytest.exit(self._interrupted_line(direction, transition.last_step), returncode=pytest.ExitCode.INTERRUPTED)
        except LockBusy as exc:
            self.progress(f"{self.server}: REFUSED: {exc}")
            self.results[direction] = TransitionResult(
                direction, self.server.lower(), target, self.apply, refusals=[Refusal("same_server", str(exc))]
            )
        finally:
            lock.release()
        self.session.collector.invalidate(phase)

    def _baseline(self, notes: list[str], journal: Journal) -> None:
        """The configuration baseline (dagcheck/drift.py), saved before the first change of entering, from the
        pre-flight snapshot the gate has just judged. A server already partly in maintenance keeps the baseline
        of the run that began the transition: taken now, it would hold what that run already changed."""
        assert self.server is not None
        server = self.server.lower()
        where = drift.path_for(self.reports_dir, server)
        if self.signs_before.get("enter"):
            try:
                kept = drift.load(self.reports_dir, server)
            except drift.BaselineError as exc:
                kept, why = None, str(exc)
            else:
                why = f"none at {where}"
            notes.append(
                f"{server}: keeping the configuration baseline taken {kept.taken_at.isoformat(timespec='seconds')}"
                " (the server was already partly in maintenance)"
                if kept
                else f"{server}: no configuration baseline ({why}); the server was already partly in maintenance, "
                "so drift across this maintenance cannot be judged"
            )
            return
        if not self.apply:
            notes.append(f"{server}: with --apply, its configuration baseline is saved to {where} before the first change")
            return
        snap = self.session.collector.snapshot(self.server, "preflight")
        baseline = drift.take(snap.get, server, dt.datetime.now(dt.UTC))
        path = drift.save(baseline, self.reports_dir)
        unread = f"; not read: {', '.join(baseline.unread)}" if baseline.unread else ""
        self.progress(f"{server}: configuration baseline saved ({len(baseline.settings)} settings) to {path}{unread}")
        journal.append(event="baseline_saved", path=str(path), settings=len(baseline.settings), unread=sorted(baseline.unread))

    def _interrupted_line(self, direction: str, last_step: str | None) -> str:
        """Where an interrupted transition stands and what to run next, in one line."""
        assert self.server is not None
        s = self.server
        where = f"after '{last_step}'" if last_step else "before its first change" if direction == "enter" else "early"
        if not self.apply:
            return f"Interrupted: the {direction} plan for {s} was not finished; nothing was changed"
        if direction == "enter":
            return (
                f"Interrupted: entering maintenance on {s} stopped {where} (journaled). Continue: pytest --phase "
                f"maintenance --server {s} --apply; roll back: pytest --phase postflight --server {s} --apply"
            )
        return (
            f"Interrupted: leaving maintenance on {s} stopped {where} (journaled). Continue: pytest --phase "
            f"postflight --server {s} --apply"
        )

    def blocked(self, phase: str) -> str | None:
        """Why this phase's checks cannot be run on a transition that was refused or failed."""
        direction = self.due(phase)
        result = self.results.get(direction or "")
        entered = self.results.get("enter")
        if direction == "exit" and result is None and entered is not None and not entered.ok:
            assert self.server is not None
            return (
                f"entering maintenance did not complete, so leaving it was not attempted: "
                f"{refuse_message(entered) if entered.refusals else entered.error}; "
                f"{lease.how_to_clear(self.server)}"
            )
        if result is None:
            return None
        if result.refusals:
            verb = "entering" if direction == "enter" else "leaving"
            return f"{verb} maintenance was refused, nothing was changed: {refuse_message(result)}"
        if result.error:
            return f"the {direction} transition stopped: {result.error} (see the journal; re-run to continue)"
        return None

    def pending_dry_run(self, phase: str) -> str | None:
        """A dry-run that left the server wholly in the state the transition starts from: the phase's checks
        would only judge a state nobody created. A partly transitioned server is checked as it is."""
        direction = self.due(phase)
        result = self.results.get(direction or "")
        if result is None or result.applied or not result.commands:
            return None
        signs = self.signs_before.get(direction or "", [])
        if (direction == "enter" and signs) or (direction == "exit" and not signs):
            return None
        return (
            f"dry-run: the {direction} transition was planned ({len(result.commands)} command(s)) but not "
            "applied; re-run with --apply to perform it"
        )


class SafeStop:
    """While a transition runs, the first Ctrl-C asks it to stop at the next safe point (between commands,
    between polls) instead of in the middle of a change; a second Ctrl-C interrupts at once. Only the main
    thread can take SIGINT; elsewhere this does nothing.

    The handler runs on the main thread between two bytecodes, possibly while that thread is inside a
    progress write or a journal append holding their (non-reentrant) locks, or half-way through a
    buffered write to the terminal. So it does no I/O and takes no lock: it only sets a flag (or raises,
    the second time, as Python's own handler does). The line saying that the stop was heard is written by
    a small watcher thread, or at the next safe point, whichever comes first."""

    NOTICE = "Ctrl-C: stopping at the next safe point (after the current command); Ctrl-C again stops at once"
    POLL = 0.1  # seconds between the watcher's looks at the flag

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress
        self._asked = False  # written only by the signal handler (a plain store: no lock, no I/O)
        self._told = False
        self._told_lock = threading.Lock()  # never taken by the handler
        self._previous: Any = None
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None

    def requested(self) -> bool:
        """Polled by the transition at its safe points (main thread, outside the handler)."""
        if self._asked:
            self._announce()
        return self._asked

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._asked:
            raise KeyboardInterrupt
        self._asked = True

    def _announce(self) -> None:
        with self._told_lock:
            if self._told:
                return
            self._told = True
        self.progress(self.NOTICE)

    def _watch(self) -> None:
        while not self._closed.wait(self.POLL):
            if self._asked:
                self._announce()
                return

    def __enter__(self) -> SafeStop:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._watcher = threading.Thread(target=self._watch, name="dagcheck-safe-stop", daemon=True)
            self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        self._closed.set()
        if self._watcher is not None:
            self._watcher.join(timeout=1.0)
            self._watcher = None
