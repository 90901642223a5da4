"""Where the pytest run meets the transitions: which phases a run checks, and the transition due before
each (enter before the maintenance checks, exit before the post-maintenance checks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dagcheck.context import DagView
from dagcheck.errors import RemoteError
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
            return in_maintenance(self.server.lower(), live.read(self.server, "components"),
                                  live.read(self.server, "cluster_nodes"), live.one(self.server, "mailbox_server"))
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
        return (f"{self.server} is already partly or fully in maintenance ({', '.join(signs)}): the pre-flight "
                "gate applies before entering; this run continues the transition and verifies it")

    def before(self, phase: str) -> None:
        direction = self.due(phase)
        if direction is None or direction in self.results:
            return
        assert self.server is not None
        view = DagView(self.server, self.session.inventory, self.session.collector, "preflight", self.target)
        target = self.target or (view.target() if direction == "enter" else None)
        transition = Transition(
            direction, self.server, target, Live(self.session.transport, self.session.inventory.expectations),
            self.session.inventory, Journal.for_server(self.reports_dir, self.server), apply=self.apply,
            force=self.force, gate_failures=self.gate_failures if direction == "enter" and not self.resuming() else [],
            progress=self.progress)
        self.signs_before.setdefault(direction, self._signs())
        lock = RunLock.beside(transition.ctx.journal.path)
        try:
            if self.apply:
                lock.acquire()
            # A damaged journal is never a reason to stop: set aside (under the lock), said once, in the report.
            if (damaged := transition.ctx.journal.set_aside_if_damaged(self.server, move=self.apply)) is not None:
                self.progress(f"{self.server}: {damaged}")
                transition.ctx.notes.append(damaged)
            self.results[direction] = transition.run()
        except LockBusy as exc:
            self.progress(f"{self.server}: REFUSED: {exc}")
            self.results[direction] = TransitionResult(direction, self.server.lower(), target, self.apply,
                                                       refusals=[Refusal("same_server", str(exc))])
        finally:
            lock.release()
        self.session.collector.invalidate(phase)

    def blocked(self, phase: str) -> str | None:
        """Why this phase's checks cannot be run on a transition that was refused or failed."""
        direction = self.due(phase)
        result = self.results.get(direction or "")
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
        return (f"dry-run: the {direction} transition was planned ({len(result.commands)} command(s)) but not "
                "applied; re-run with --apply to perform it")
