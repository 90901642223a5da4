"""Rolling maintenance of a DAG: every member in turn through gate, enter, patch, exit and verification.

Each member's turn reuses the single-server machinery as it is: a separate `pytest --phase maintenance
--server M --apply` run (the pre-flight gate, the enter transition with its interlocks, lease and
journal, the maintenance checks), the patch step, then `pytest --phase postflight --server M --apply`
(the exit transition and the post-maintenance checks). A separate run per phase gives every member its
own reports and journal exactly as a hand-driven cycle would, and a fresh snapshot of the DAG as the
previous member left it. Around those runs this module adds what only a rolling run knows:

- the order (rules.rolling.rolling_order: the PAM holder last, fewest active databases first);
- the target gate (rules.rolling.target_problems) and the window's build parity, on fresh state;
- the patch step (a local command, a pause for the operator, or a wait for the new build);
- the build check after the patch: ExSetup.exe exactly the target, AdminDisplayVersion on its CU;
- a journal, reports/rolling-<dag>.jsonl: the run stops at the first member that fails, names the
  state it left that member in, never starts the next one, and the next run resumes from there.

DAG-BUILD-002 (same build on every member) is left out of the per-member runs: mixed builds are the
point of a rolling window; this module judges the window's parity itself, and the final nightly run
judges the DAG as a whole.

The run is split by concern: rolling_setup.py (the options, checked; the looks at the DAG), rolling_plan.py
(the steps and the dry run's plan), rolling_children.py (phase runs and patch commands, journaled),
rolling_resume.py (going on after a stop or a kill), rolling_patch.py (the patch step and its waits),
rolling_steps.py (the other steps). This module is the run itself: the order, the per-member loop, the
report, and the command-line entry.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagcheck.errors import RemoteError
from dagcheck.files import write_private
from dagcheck.maintenance.rolling_patch import RollingPatch
from dagcheck.maintenance.rolling_plan import STEP_TITLES, STEPS
from dagcheck.maintenance.rolling_setup import HEARTBEAT, PatchStep, RollingUsage
from dagcheck.maintenance.rolling_steps import RollingSteps
from dagcheck.maintenance.runlock import LockBusy, RunLock
from dagcheck.rules.builds import Build, parse_build, show
from dagcheck.rules.rolling import MemberFacts

MIN_PATCH_POLL = 0.1  # --patch-poll: seconds between two looks at a member coming back (default 1; the lab's tests go lower)
OUTPUT_KEEP = 4000  # characters of a step's output kept in the journal (its tail)
MIN_PROGRESS_EVERY = 0.5  # --progress-every: the lowest (the tests' cadence check goes down to it)


@dataclass
class MemberOutcome:
    name: str
    status: str = "not started"  # not started, done, stopped, skipped (done by an earlier run)
    step: str | None = None
    reason: str = ""
    state: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Rolling(RollingSteps, RollingPatch):
    """A rolling run: its parts' methods (setup, plan, children, resume, steps, patch) put together, and the
    loop over the members that runs them."""

    # ---- the run --------------------------------------------------------------------------------

    def run(self) -> int:
        resume = self.unfinished()
        try:
            order, before = self._with_live(lambda live: (self._order(live), self._builds(live)))
            enter_plans = {} if self.apply else self._with_live(lambda live: self._enter_plans(live, order))
        except RemoteError as exc:
            if not (resume and resume.get("order") and resume.get("builds_before")):
                self.progress(f"dagcheck rolling {self.dag}: cannot read the DAG: {exc}")
                return 1
            # A resumed run has the order and the builds from the journal: a member still rebooting from the
            # killed run's patch is no reason not to go on (its own step waits for it).
            self.progress(
                f"dagcheck rolling {self.dag}: the DAG cannot be read now ({exc}); resuming in the "
                "earlier run's order, with the builds it recorded"
            )
            facts = {f[0]: MemberFacts(*f) for f in resume.get("order_facts") or []}
            order = [facts.get(n, MemberFacts(n, 0, 0, False)) for n in resume["order"]]
            before, enter_plans = {}, {}
        if resume:
            by_name = {m.name: m for m in order}
            order = [by_name[n] for n in resume.get("order", []) if n in by_name] or order
            before = {m: parse_build(b) for m, b in (resume.get("builds_before") or {}).items()} or before
        for line in self.plan_lines(order, resume, enter_plans):
            self.progress(line)
        if not self.apply:
            return 0
        lock = RunLock.beside(self.journal.path)
        try:
            lock.acquire()
        except LockBusy as exc:
            self.progress(f"dagcheck rolling {self.dag}: REFUSED: {exc}")
            return 1
        try:
            return self._apply(order, before, resume)
        finally:
            lock.release()

    def _apply(self, order: list[MemberFacts], before: dict[str, Build], resume: dict[str, Any] | None) -> int:
        if resume is None:
            self.journal.append(
                event="rolling_started",
                dag=self.dag,
                order=[m.name for m in order],
                order_facts=[[m.name, m.active_databases, m.copies, m.holds_pam] for m in order],
                target=show(self.target_build) if self.target_build else None,
                builds_before={m: show(b) for m, b in before.items()},
                patch=self.patch.describe(),
            )
            resume = {"done": [], "patched": [], "steps": {}, "children": {}, "entered_at": {}}
        else:
            self.journal.append(event="rolling_resumed", dag=self.dag, done=resume["done"])
        self.resume = resume
        self._settle_children()
        outcomes = [MemberOutcome(m.name) for m in order]
        for outcome in outcomes:
            if outcome.name in resume["done"]:
                outcome.status = "skipped"
                continue
            if not self._member(outcome, before):
                self.journal.append(
                    event="rolling_stopped", member=outcome.name, step=outcome.step, reason=outcome.reason, state=outcome.state
                )
                self._report(outcomes)
                return 1
            self.journal.append(event="member_done", member=outcome.name)
        self.journal.append(event="rolling_completed", dag=self.dag)
        self._report(outcomes)
        return 0

    def _member(self, outcome: MemberOutcome, before: dict[str, Build]) -> bool:
        m = outcome.name
        done_before = list(self.resume.get("steps", {}).get(m, []))
        self.progress(f"== {m}" + (f" (resuming; done by the earlier run: {', '.join(done_before)})" if done_before else ""))
        member_started = time.monotonic()
        for step in STEPS:
            outcome.step = step
            if self._done_earlier(m, step, done_before):
                self.progress(f"{m}: {STEP_TITLES[step]}: done by the earlier run (journal), not repeated")
                continue
            self.progress(f"{m}: {STEP_TITLES[step]}")
            started = time.monotonic()
            try:
                ok, detail, output = getattr(self, f"_step_{step}")(m, before)
            except RemoteError as exc:
                ok, detail, output = False, f"could not read the state this step needs: {exc}", ""
            self.journal.append(
                event="member_step",
                member=m,
                step=step,
                outcome="done" if ok else "failed",
                detail=detail,
                seconds=round(time.monotonic() - started, 3),
                output=output[-OUTPUT_KEEP:] if output else None,
            )
            if detail:
                self.progress(f"  {detail}")
            if not ok:
                outcome.status, outcome.reason = "stopped", detail
                outcome.state = self._state_of(m)
                return False
            if detail:
                outcome.notes.append(detail)
        outcome.status, outcome.step = "done", None
        outcome.seconds = time.monotonic() - member_started
        return True

    # ---- the report -----------------------------------------------------------------------------

    def _report(self, outcomes: list[MemberOutcome]) -> None:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        stopped = next((o for o in outcomes if o.status == "stopped"), None)
        verdict = (
            f"STOPPED at {stopped.name} ({STEP_TITLES.get(stopped.step or '', stopped.step)})"
            if stopped
            else "COMPLETED: every member patched and verified"
        )
        lines = [f"dagcheck rolling {self.dag} — {verdict} ({stamp})"]
        for o in outcomes:
            if o.status == "done":
                lines.append(f"  {o.name}: done in {o.seconds:.0f} s" + (f" ({'; '.join(o.notes)})" if o.notes else ""))
            elif o.status == "skipped":
                lines.append(f"  {o.name}: done by an earlier run")
            elif o.status == "stopped":
                lines += [
                    f"  {o.name}: STOPPED at {STEP_TITLES.get(o.step or '', o.step)}: {o.reason}",
                    f"    left {o.state}",
                    f"    fix the cause, then `dagcheck rolling {self.dag} --apply` resumes at {o.name}; or bring it "
                    f"back into service with `dagcheck exit {o.name} --apply`",
                ]
            else:
                lines.append(f"  {o.name}: not started (untouched)")
        lines.append(f"Journal: {self.journal.path}; each member's reports and transition journal: {self.reports_dir}")
        path = self.reports_dir / f"rolling-{self.dag.lower()}.txt"
        write_private(path, "\n".join(lines) + "\n")
        for line in lines:
            self.progress(line)
        self.progress(f"written: {path}")


def main_from_config(config: Any) -> int:
    """`pytest --rolling DAG` (and `dagcheck rolling DAG`): the rolling run instead of a check run."""
    from dagcheck.errors import InventoryError
    from dagcheck.inventory import load_inventory

    opt = config.getoption
    name = f"--rolling {opt('--rolling')}"
    try:
        inventory = load_inventory(opt("--inventory"))
    except InventoryError as exc:
        print(f"dagcheck: {exc}", file=sys.stderr)
        return 4
    try:
        dag = inventory.dag(opt("--rolling"))
    except KeyError:
        print(f"dagcheck: {name}: not in {inventory.file}", file=sys.stderr)
        return 4
    target_text = opt("--target-build") or dag.target_build
    try:
        target = parse_build(target_text) if target_text else None
    except ValueError:
        print(f"dagcheck: --target-build {target_text!r} is not a build number (15.2.x.y)", file=sys.stderr)
        return 4
    poll = float(opt("--patch-poll"))
    if not MIN_PATCH_POLL <= poll:
        print(f"dagcheck: --patch-poll {poll:g}: at least {MIN_PATCH_POLL:g} s", file=sys.stderr)
        return 4
    every = float(opt("--progress-every"))
    if not MIN_PROGRESS_EVERY <= every <= HEARTBEAT:
        print(
            f"dagcheck: --progress-every {every:g}: between {MIN_PROGRESS_EVERY:g} and {HEARTBEAT:g} s "
            "(a change window must never look like a hang)",
            file=sys.stderr,
        )
        return 4
    patch = PatchStep(
        opt("--patch-command") or dag.patch_command,
        opt("--patch-pause"),
        opt("--patch-wait"),
        float(opt("--patch-timeout")),
        poll,
    )
    try:
        rolling = Rolling(
            inventory,
            Path(opt("--inventory")),
            dag.name,
            Path(opt("--reports-dir")),
            opt("--apply"),
            patch,
            target,
            strict_warnings=opt("--strict-warnings"),
            progress=lambda line: print(line, flush=True),
            heartbeat=every,
        )
    except RollingUsage as exc:
        print(f"dagcheck: {exc}", file=sys.stderr)
        return 4
    return rolling.run()
