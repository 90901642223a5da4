"""Run a transition: interlocks, the plan, each step journaled and verified, waits that report progress.

Without apply it only makes the plan (the exact commands, in order) and changes nothing. With apply it
executes that same plan; an interrupted run leaves a journal, and the next run re-reads the state,
says where it stands and continues (enter) or rolls back (exit) from there.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dagcheck.errors import OutcomeUnknown, RemoteError, TransitionRefused
from dagcheck.inventory import Inventory
from dagcheck.maintenance import lease
from dagcheck.maintenance.interlocks import Refusal, check_interlocks
from dagcheck.maintenance.journal import Journal
from dagcheck.maintenance.live import Live
from dagcheck.maintenance.steps import Action, Ctx, Step, Wait, enter_steps, exit_steps
from dagcheck.remote.base import Command, Endpoint


class TransitionFailed(Exception):
    """A step's command failed or its wait gave up; the journal says how far the transition got."""


class TransitionInterrupted(Exception):
    """The operator asked to stop (Ctrl-C): raised at the next safe point, between commands or polls."""


@dataclass
class StepRecord:
    name: str
    title: str
    commands: list[str]
    outcome: str = "planned"  # planned, already done, done, failed
    duration: float = 0.0
    detail: str = ""


@dataclass
class TransitionResult:
    direction: str
    server: str
    target: str | None
    applied: bool
    steps: list[StepRecord] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    forced: list[Refusal] = field(default_factory=list)
    resumed_from: str | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    interrupted: bool = False  # stopped by the operator (Ctrl-C) at a safe point

    @property
    def commands(self) -> list[str]:
        return [c for s in self.steps if s.outcome != "already done" for c in s.commands]

    @property
    def ok(self) -> bool:
        return not self.refusals and self.error is None


class Transition:
    def __init__(
        self,
        direction: str,
        server: str,
        target: str | None,
        live: Live,
        inventory: Inventory,
        journal: Journal,
        apply: bool,
        force: bool = False,
        gate_failures: list[str] | None = None,
        progress: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        after_step: Callable[[str], None] | None = None,
        stop_requested: Callable[[], bool] | None = None,
    ) -> None:
        if direction not in ("enter", "exit"):
            raise ValueError(direction)
        self.direction = direction
        self.ctx = Ctx(server.lower(), target.lower() if target else None, live, inventory, journal)
        self.apply = apply
        self.force = force
        self.gate_failures = gate_failures or []
        self.progress = progress or (lambda line: None)
        self.sleep = sleep
        self.after_step = after_step  # test hook: may raise to simulate an interruption after a step
        self.stop_requested = stop_requested or (lambda: False)  # Ctrl-C seen: stop at the next safe point
        self.last_step: str | None = None  # the last step journaled as done (where an interruption stands)
        monitoring_off = inventory.expectations.monitoring_inactive_in_maintenance
        self.steps: list[Step] = enter_steps(monitoring_off) if direction == "enter" else exit_steps(monitoring_off)

    # ---- plan -------------------------------------------------------------------------------

    def plan(self) -> list[tuple[Step, list[Action], bool]]:
        """Each step with its commands and whether it is already done, from the current state."""
        out = []
        for step in self.steps:
            done = step.done(self.ctx)
            out.append((step, [] if done else step.actions(self.ctx), done))
        return out

    # ---- run --------------------------------------------------------------------------------

    def run(self) -> TransitionResult:
        ctx = self.ctx
        result = TransitionResult(self.direction, ctx.server, ctx.target, self.apply)
        result.resumed_from = ctx.journal.where_it_stands()
        if result.resumed_from:
            self.progress(
                f"{ctx.server}: {result.resumed_from}; continuing from the current state"
                if self.direction == "enter"
                else f"{ctx.server}: {result.resumed_from}; rolling back"
            )
        if self.direction == "enter":
            refusals = check_interlocks(ctx, self.gate_failures)
            allowed = set(ctx.inventory.maintenance.force_allowed) if self.force else set()
            result.forced = [r for r in refusals if r.interlock in allowed]
            result.refusals = [r for r in refusals if r.interlock not in allowed]
            if result.refusals:
                if self.apply:
                    ctx.journal.append(
                        event="transition_refused", direction=self.direction, reasons=[r.reason for r in result.refusals]
                    )
                return result
        result.notes = ctx.notes  # shared: notes made by a step that later fails still reach the report
        plan = self.plan()
        result.steps = [
            StepRecord(s.name, s.title, [a.render() for a in actions], "already done" if done else "planned")
            for s, actions, done in plan
        ]
        if self.direction == "enter" and result.resumed_from is None and (foreign := self._foreign_claim()):
            if not self.apply:
                ctx.notes.append(foreign)
            else:
                result.refusals = [Refusal("lease", foreign)]
                ctx.journal.append(event="transition_refused", direction=self.direction, reasons=[foreign])
                return result
        if not self.apply:
            return result
        ctx.journal.append(
            event="transition_started",
            direction=self.direction,
            target=ctx.target,
            plan=result.commands,
            forced=[r.reason for r in result.forced],
        )
        # The state read after a step is the next step's "before": this run sends nothing in between (a step
        # found already done only reads), so reading it again would journal the same state at twice the cost.
        last_after: dict[str, object] | None = None
        for (step, actions, done), record in zip(plan, result.steps, strict=True):
            if self.stop_requested():
                return self._interrupted(result, f"before '{step.title}'")
            if done:
                ctx.journal.append(event="step", direction=self.direction, step=step.name, outcome="already done")
                if step.name == CLAIM_STEP and self.direction == "enter" and (refusal := self._contest(claimed_now=False)):
                    result.refusals = [refusal]
                    return result
                _test_kill_after(step.name)
                continue
            started = time.monotonic()
            before = last_after if last_after is not None else state_summary(ctx)
            last_after = None
            try:
                self._execute(step, actions)
                record.outcome = "done"
            except TransitionInterrupted:
                record.outcome, record.detail = "interrupted", "stopped at a safe point (Ctrl-C)"
                record.duration = time.monotonic() - started
                return self._interrupted(result, f"during '{step.title}' (its commands so far ran; its wait did not finish)")
            except (RemoteError, TransitionFailed) as exc:
                record.outcome, record.detail = "failed", str(exc)
                result.error = f"step '{step.title}' failed: {exc}"
                ctx.journal.append(
                    event="step",
                    direction=self.direction,
                    step=step.name,
                    outcome="failed",
                    commands=record.commands,
                    error=str(exc),
                    before=before,
                    after=state_summary(ctx),
                )
                return result
            finally:
                record.duration = time.monotonic() - started
            last_after = state_summary(ctx)
            ctx.journal.append(
                event="step",
                direction=self.direction,
                step=step.name,
                outcome="done",
                commands=record.commands,
                seconds=round(record.duration, 3),
                before=before,
                after=last_after,
            )
            self.last_step = step.title
            if step.name == CLAIM_STEP and self.direction == "enter" and (refusal := self._contest(claimed_now=True)):
                record.outcome = "undone"
                result.refusals = [refusal]
                return result
            if self.after_step is not None:
                last_after = None  # the hook may change the server (a test's interruption or fault): read again
                self.after_step(step.name)
            _test_kill_after(step.name)
        ctx.journal.append(event="transition_completed", direction=self.direction)
        return result

    def _interrupted(self, result: TransitionResult, where: str) -> TransitionResult:
        """Ctrl-C at a safe point: journaled (the next run resumes or rolls back from Exchange's state)."""
        ctx = self.ctx
        result.error = f"interrupted (Ctrl-C) {where}"
        result.interrupted = True
        ctx.journal.append(event="interrupted", direction=self.direction, where=where, last_step_done=self.last_step)
        return result

    # ---- the DAG-wide lease (dagcheck/maintenance/lease.py) ------------------------------------

    def _foreign_claim(self) -> str | None:
        """This server already holds the lease, but this run's journal has no unfinished transition: the
        claim belongs to another run (another host or reports folder) or to someone working by hand."""
        ctx = self.ctx
        try:
            mine = lease.holder(ctx, ctx.server)
        except RemoteError as exc:
            return f"could not read whether {ctx.server} is already being entered into maintenance: {exc}"
        if mine is None:
            return None
        since = mine.since.isoformat() if mine.since else "an unknown time"
        return (
            f"{ctx.server} is already being entered into maintenance by another run since {since} "
            f"({', '.join(mine.signs)}; no unfinished transition in {ctx.journal.path}); " + lease.how_to_clear(ctx.server)
        )

    def _contest(self, claimed_now: bool) -> Refusal | None:
        """Right after the claim, re-read every member; the loser undoes its own claim and refuses."""
        ctx = self.ctx
        try:
            at_claim = lease.holder(ctx, ctx.server)
            reason = lease.contest(ctx)
            now = lease.holder(ctx, ctx.server)
            if reason is None and claimed_now and at_claim and now and at_claim.since != now.since:
                # The same server claimed again after us (a run from another reports folder): the latest
                # claim is that run's; ours is no longer ours to undo.
                reason = (
                    f"{ctx.server} is already being entered into maintenance by another run since "
                    f"{now.since.isoformat() if now.since else 'an unknown time'}"
                )
                claimed_now = False
        except RemoteError as exc:
            reason = f"could not re-read the DAG after the claim: {exc}"
        if reason is None:
            self.progress(f"{ctx.server}: holds the DAG's maintenance lease")
            return None
        if claimed_now:
            undo = _set_hub_active(ctx)
            try:
                ctx.live.run(undo.server, undo.endpoint, undo.command)
                reason += f"; this run undid its claim ({undo.render()})"
            except RemoteError as exc:
                reason += f"; undoing this run's claim FAILED ({exc}): run {undo.render()}"
        ctx.journal.append(event="lease_lost", direction=self.direction, reason=reason)
        ctx.journal.append(event="transition_refused", direction=self.direction, reasons=[reason])
        self.progress(f"{ctx.server}: REFUSED: {reason}")
        return Refusal("one_at_a_time", reason)

    def _execute(self, step: Step, actions: list[Action]) -> None:
        ctx = self.ctx
        self.progress(f"{ctx.server}: {step.title}")
        if step.effect is not None:
            step.effect(ctx)
        unknown: OutcomeUnknown | None = None
        for action in actions:
            if self.stop_requested():
                raise TransitionInterrupted()
            before = action.render()
            try:
                ctx.live.run(action.server, action.endpoint, action.command)
            except OutcomeUnknown as exc:
                # The change may have run: never repeated blindly; reading the state back decides.
                unknown = exc
                self.progress(f"  {before}: {exc.reason}; re-verifying by reading, not repeating it")
                ctx.journal.append(
                    event="outcome_unknown", direction=self.direction, step=step.title, command=before, reason=exc.reason
                )
                break
            self.progress(f"  ran {before}")
        if step.wait is not None:
            try:
                self._wait(step.wait)
            except TransitionFailed as exc:
                if unknown is None:
                    raise
                raise TransitionFailed(f"'{step.title}': {unknown}; reading back shows it did not take effect ({exc})") from None
        check = step.postcondition() or (step.done if unknown is not None else None)
        if check is not None and not check(ctx):
            if unknown is not None:
                raise TransitionFailed(f"'{step.title}': {unknown}; reading back shows it did not take effect")
            raise TransitionFailed(f"after '{step.title}' the server is still not in the expected state")

    def _wait(self, wait: Wait) -> None:
        settings = self.ctx.inventory.maintenance
        deadline = time.monotonic() + settings.wait_timeout
        max_polls = int(settings.wait_timeout / settings.poll_interval) if settings.poll_interval else 10 * settings.wait_timeout
        last, unchanged = None, 0
        for poll in range(max_polls + 1):
            try:
                satisfied, value = wait.probe(self.ctx)
            except RemoteError as exc:  # e.g. Get-Queue right after a transport restart: keep polling
                satisfied, value = False, f"not answering ({str(exc)[:60]})"
            if satisfied:
                self.progress(f"  {wait.what}: done ({value})")
                return
            unchanged = unchanged + 1 if value == last else 0
            last = value
            left = max(0.0, deadline - time.monotonic())
            self.progress(f"  waiting for {wait.what}: now {value}; {left:.0f} s left")
            if unchanged >= settings.no_progress_polls:
                if not wait.required:
                    self.progress(f"  {wait.what}: no progress after {unchanged} polls, going on")
                    return
                raise TransitionFailed(f"no progress waiting for {wait.what} (still {value} after {unchanged} polls)")
            if time.monotonic() >= deadline or poll == max_polls:
                if not wait.required:
                    return
                raise TransitionFailed(f"timed out waiting for {wait.what} (still {value})")
            if self.stop_requested():
                raise TransitionInterrupted()
            self.sleep(settings.poll_interval)


CLAIM_STEP = "drain_transport"  # the first change of entering: the lease's claim
KILL_ENV = "DAGCHECK_TEST_KILL_AFTER_STEP"


def _set_hub_active(ctx: Ctx) -> Action:
    return Action(
        ctx.server,
        Endpoint.EXCHANGE,
        Command.of(
            "Set-ServerComponentState", Identity=ctx.server, Component="HubTransport", State="Active", Requester="Maintenance"
        ),
    )


def _test_kill_after(step: str) -> None:
    """TEST-ONLY: with DAGCHECK_TEST_KILL_AFTER_STEP=<step name> the process kills itself with SIGKILL
    right after journaling that step, so tests can prove resume and rollback from a hard crash
    (tests/scenarios/test_dag_lease.py). Never set it in production."""
    if os.environ.get(KILL_ENV) == step:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def state_summary(ctx: Ctx) -> dict[str, object]:
    """The server's maintenance-relevant state, journaled before and after each step."""
    out: dict[str, object] = {}

    def queue_counts() -> dict[str, object]:  # one Get-Queue gives both counts
        queues = ctx.live.read(ctx.server, "queues")
        return {
            "queued_messages": sum(q.message_count for q in queues if q.kind not in ("Shadow", "Poison")),
            "poison_messages": sum(q.message_count for q in queues if q.kind == "Poison"),
        }

    probes: list[tuple[tuple[str, ...], Callable[[], dict[str, object]]]] = [
        (
            ("components",),
            lambda: {
                "components": {
                    c.component: c.state
                    for c in ctx.live.read(ctx.server, "components")
                    if c.component in ("ServerWideOffline", "HubTransport", "Monitoring")
                }
            },
        ),
        (
            ("cluster_node",),
            lambda: {
                "cluster_node": next((n.state for n in ctx.live.read(ctx.server, "cluster_nodes") if n.name == ctx.server), None)
            },
        ),
        (
            ("activation",),
            lambda: {
                "activation": (lambda m: f"{m.activation_policy}, MoveNow {m.move_now}")(
                    ctx.live.one(ctx.server, "mailbox_server")
                )
            },
        ),
        (
            ("mounted_here",),
            lambda: {"mounted_here": [c.database for c in ctx.live.read(ctx.server, "copies") if c.status == "Mounted"]},
        ),
        (("queued_messages", "poison_messages"), queue_counts),
    ]
    for names, probe in probes:
        try:
            out.update(probe())
        except RemoteError as exc:  # e.g. Get-Queue while transport restarts
            out.update((name, f"unreadable: {str(exc)[:80]}") for name in names)
    return out


def refuse_message(result: TransitionResult) -> str:
    return "; ".join(f"[{r.interlock}] {r.reason}" for r in result.refusals)


__all__ = ["Transition", "TransitionFailed", "TransitionRefused", "TransitionResult", "refuse_message"]
