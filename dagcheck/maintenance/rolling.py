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
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from dagcheck.errors import RemoteError
from dagcheck.files import private_dir, write_private
from dagcheck.inventory import Inventory
from dagcheck.maintenance import lease
from dagcheck.maintenance.child import ChildFiles, Ended, launch, signal_group, supervise
from dagcheck.maintenance.journal import Journal
from dagcheck.maintenance.live import Live
from dagcheck.maintenance.runlock import LockBusy, RunLock
from dagcheck.maintenance.runner import Transition
from dagcheck.maintenance.steps import Ctx, exit_steps
from dagcheck.options import ROOT
from dagcheck.rules.builds import Build, parse_build, same_cu, show
from dagcheck.rules.dag import choose_target, in_maintenance
from dagcheck.rules.rolling import MemberFacts, explain, rolling_order, target_problems, window_parity
from dagcheck.session import DagcheckSession

STEPS = ("target_gate", "gate_and_enter", "patch", "verify_build", "exit_and_verify")
STEP_TITLES = {
    "target_gate": "target gate (the target build's needs, the DAG's builds, the lease)",
    "gate_and_enter": "pre-flight gate, enter maintenance, maintenance checks",
    "patch": "patch step",
    "verify_build": "the member reports the target build",
    "exit_and_verify": "exit maintenance, post-maintenance checks",
}
MIN_PATCH_POLL = 0.1  # --patch-poll: seconds between two looks at a member coming back (default 1; the lab's tests go lower)
OUTPUT_KEEP = 4000  # characters of a step's output kept in the journal (its tail)
OUTPUT_READ = 1_000_000  # bytes of a child's log read back to find why it failed (its tail; the log stays whole)
HEARTBEAT = 10.0  # seconds: while anything runs, a line at least this often (issue 26: never 15 s of silence)
MIN_PROGRESS_EVERY = 0.5  # --progress-every: the lowest (the tests' cadence check goes down to it)
# Test-suite plugins a phase run never uses, not loaded (when installed) in its start-up: with them, every
# pytest start took 10 to 15 s longer on a loaded 2-core machine, twice per member (benchmarks/README.md).
SKIP_PLUGINS = ("-p", "no:xdist", "-p", "no:hypothesispytest")
CHILD_KIND = {
    "gate_and_enter": "pytest run (pre-flight gate, enter, maintenance checks)",
    "exit_and_verify": "pytest run (exit, post-maintenance checks)",
    "patch": "patch command",
}


class RollingUsage(Exception):
    """A rolling run that cannot start as asked; the message says what to change."""


@dataclass
class PatchStep:
    """How a member gets patched: a local command, the operator's confirmation, or a wait for the build."""

    command: str | None = None
    pause: bool = False
    wait: bool = False
    timeout: float = 3600.0
    poll: float = 1.0

    def describe(self) -> str:
        if self.command:
            return f"run `{self.command}`"
        if self.pause:
            return "pause until the operator confirms on the terminal"
        if self.wait:
            return f"wait until the server reports the target build and answers again (at most {self.timeout:g} s)"
        return "none given (--patch-command, --patch-pause or --patch-wait; needed with --apply)"

    @property
    def given(self) -> bool:
        return bool(self.command or self.pause or self.wait)


@dataclass
class MemberOutcome:
    name: str
    status: str = "not started"  # not started, done, stopped, skipped (done by an earlier run)
    step: str | None = None
    reason: str = ""
    state: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Rolling:
    inventory: Inventory
    inventory_path: Path
    dag: str
    reports_dir: Path
    apply: bool
    patch: PatchStep
    target_build: Build | None
    strict_warnings: bool = False
    progress: Callable[[str], None] = print
    confirm: Callable[[str], str] = input
    sleep: Callable[[float], None] = time.sleep
    pytest_extra: list[str] = field(default_factory=list)
    heartbeat: float = HEARTBEAT
    resume: dict[str, Any] = field(default_factory=dict)  # what an earlier, unfinished run did (unfinished())

    def __post_init__(self) -> None:
        try:
            self.dag_spec = self.inventory.dag(self.dag)
        except KeyError:
            raise RollingUsage(f"--rolling {self.dag}: not in {self.inventory.file}") from None
        self.dag = self.dag_spec.name
        self.members = [m.lower() for m in self.dag_spec.members]
        self.journal = Journal(self.reports_dir / f"rolling-{self.dag.lower()}.jsonl")
        private_dir(self.reports_dir)
        if self.patch.command and self.patch.pause:
            raise RollingUsage("give one patch step: --patch-command or --patch-pause, not both")
        if self.apply and not self.patch.given:
            raise RollingUsage(
                f"--rolling {self.dag} --apply needs a patch step: --patch-command CMD (or "
                f"dags[].patch_command in {self.inventory.file}), --patch-pause or --patch-wait"
            )
        if self.patch.wait and self.target_build is None:
            raise RollingUsage("--patch-wait waits for the target build: give --target-build (or dags[].target_build)")
        if self.apply and self.inventory.lab is not None:
            raise RollingUsage(
                f"{self.inventory.file} describes the embedded lab, which starts afresh for every run: "
                "a rolling patch needs real servers or a persistent lab (python -m dagcheck.lab serve "
                "--state FILE --write-inventory PATH, then --inventory PATH)"
            )

    # ---- reading the DAG ------------------------------------------------------------------------

    def _session(self) -> DagcheckSession:
        return DagcheckSession(self.inventory, dag=self.dag)

    def _with_live(self, fn: Callable[[Live], Any]) -> Any:
        """A fresh session for each look: a member that rebooted has dropped every connection."""
        session = self._session()
        try:
            # with progress: a call that hangs says so (Live's own "still waiting for ..." lines)
            return fn(Live(session.transport, self.inventory.expectations, progress=self.progress))
        finally:
            session.close()

    def _order(self, live: Live) -> list[MemberFacts]:
        status = next((d for d in live.read(self.members[0], "dag_status") if d.name.lower() == self.dag.lower()), None)
        pam = (status.primary_active_manager or "").lower() if status else ""
        facts = []
        for m in self.members:
            copies = live.read(m, "copies")
            facts.append(MemberFacts(m, sum(1 for c in copies if c.status == "Mounted"), len(copies), m == pam))
        return rolling_order(facts)

    def _builds(self, live: Live) -> dict[str, Build]:
        return {m: live.one(m, "exsetup").version for m in self.members}

    def _state_of(self, member: str) -> str:
        """The state a stopped run left the member in, read fresh, in words."""

        def read(live: Live) -> str:
            signs = in_maintenance(
                member, live.read(member, "components"), live.read(member, "cluster_nodes"), live.one(member, "mailbox_server")
            )
            build = show(live.one(member, "exsetup").version)
            if not signs:
                return f"in service (no sign of maintenance), build {build}"
            return f"in maintenance or partly ({', '.join(signs)}), build {build}"

        try:
            return self._with_live(read)
        except RemoteError as exc:
            return f"unknown: its state could not be read ({exc})"

    # ---- the journal ----------------------------------------------------------------------------

    def unfinished(self) -> dict[str, Any] | None:
        """The rolling_started entry of a run that neither completed nor was abandoned, with what it did:
        members done, each member's steps done, and the children (phase runs, patch commands) it started whose
        step it never journaled (it was killed while they ran, or before it could write their outcome)."""
        current: dict[str, Any] | None = None
        for e in self.journal.entries():
            event, member, step = e.get("event"), e.get("member"), e.get("step")
            if event == "rolling_started":
                current = {**e, "done": [], "patched": [], "stopped": None, "steps": {}, "children": {}, "entered_at": {}}
            elif current is None:
                continue
            elif event == "member_done":
                current["done"].append(member)
            elif event == "child_started":
                current["children"][(member, step)] = {"base": e.get("base"), "ended": False, "rc": None, "time": e.get("time")}
                if step == "gate_and_enter":
                    current["entered_at"][member] = e.get("time")
            elif event == "child_ended" and (member, step) in current["children"]:
                current["children"][(member, step)].update(ended=True, rc=e.get("rc"), never=e.get("never_started"))
            elif event == "member_step":
                current["children"].pop((member, step), None)  # its outcome is journaled: nothing left to settle
                if e.get("outcome") == "done":
                    current["steps"].setdefault(member, []).append(step)
                    if step == "patch":
                        current["patched"].append(member)
            elif e.get("event") == "rolling_stopped":
                current["stopped"] = e
            elif e.get("event") == "rolling_completed":
                current = None
        return current

    # ---- the plan -------------------------------------------------------------------------------

    def phase_command(self, member: str, phase: str, apply: bool = True) -> list[str]:
        """The pytest run behind one member's phase (as `dagcheck enter/exit M --apply` runs it; without apply,
        only its checks, for a member a killed run has already entered)."""
        args = [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "checks"),
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            "--inventory",
            str(self.inventory_path.resolve()),
            "--reports-dir",
            str(self.reports_dir.resolve()),
            "--phase",
            phase,
            "--server",
            member,
            *(["--apply"] if apply else []),
            "-p",
            "no:cacheprovider",
            *SKIP_PLUGINS,
            "-q",
            "-rfE",
        ]
        return args + (["--strict-warnings"] if self.strict_warnings else []) + self.pytest_extra

    def patch_env(self, member: str) -> dict[str, str]:
        env = {"DAGCHECK_SERVER": member, "DAGCHECK_FQDN": self.inventory.server(member).fqdn, "DAGCHECK_DAG": self.dag}
        if self.target_build is not None:
            env["DAGCHECK_TARGET_BUILD"] = show(self.target_build)
        return env

    def _enter_plans(self, live: Live, order: list[MemberFacts]) -> dict[str, list[str]]:
        """For the dry-run: each member's enter transition as `dagcheck enter M` plans it (the same planner, the
        same choice of the member that takes its messages), on the DAG's current state: its steps, each with the
        Exchange commands it sends. A member's own turn plans again on the state the previous member left."""
        hub = {}
        for m in self.members:
            states = {c.component: c.state for c in live.read(m, "components")}
            hub[m] = states.get("HubTransport") == "Active" and states.get("ServerWideOffline") == "Active"
        sites = {m: self.inventory.server(m).site for m in self.members}
        plans: dict[str, list[str]] = {}
        for facts in order:
            m = facts.name
            target = choose_target(m, sites, hub, self.members)
            transition = Transition(
                "enter", m, target, live, self.inventory, Journal.for_server(self.reports_dir, m), apply=False
            )
            lines = [f"messages to {target or '(no member with HubTransport Active)'}"]
            for step, actions, done in transition.plan():
                lines.append(step.title + (" (already done)" if done else ""))
                lines += [f"  {a.render()}" for a in actions]
            plans[m] = lines
        return plans

    def plan_lines(
        self, order: list[MemberFacts], resume: dict[str, Any] | None, enter_plans: dict[str, list[str]] | None = None
    ) -> list[str]:
        head = "Applying" if self.apply else "Dry run (nothing changes; --apply performs it)"
        lines = [
            f"{head}: rolling patch of {self.dag}, {len(order)} member(s)"
            + (f", to build {show(self.target_build)}" if self.target_build else ", no target build given"),
            f"Patch step: {self.patch.describe()}",
            "Order (the PAM holder last, fewest active databases first): "
            + "; ".join(f"{i}. {m.name} ({explain(m)})" for i, m in enumerate(order, 1)),
        ]
        if resume:
            lines.append(
                f"Resuming the run started {resume.get('time')}: done {', '.join(resume['done']) or 'none'}"
                + (
                    f"; stopped at {resume['stopped'].get('member')} ({resume['stopped'].get('reason')})"
                    if resume.get("stopped")
                    else ""
                )
            )
        monitoring_off = self.inventory.expectations.monitoring_inactive_in_maintenance
        exit_titles = "; ".join(s.title for s in exit_steps(monitoring_off))
        for i, m in enumerate(order, 1):
            done = resume is not None and m.name in resume["done"]
            lines.append(f"{i}. {m.name}" + (" (done by the earlier run: skipped)" if done else ""))
            if done:
                continue
            env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.patch_env(m.name).items())
            lines += [
                f"   a. {STEP_TITLES['target_gate']}" + ("" if self.target_build else " (no target build: only the lease)"),
                f"   b. {STEP_TITLES['gate_and_enter']}: {shlex.join(self.phase_command(m.name, 'maintenance')[1:])}",
                *(
                    [f"      the enter's steps and Exchange commands, as `dagcheck enter {m.name}` plans them now:"]
                    + [f"        {line}" for line in enter_plans[m.name]]
                    if enter_plans and m.name in enter_plans
                    else []
                ),
                f"   c. {STEP_TITLES['patch']}: "
                + (f"{env} {self.patch.command}" if self.patch.command else self.patch.describe()),
                f"   d. {STEP_TITLES['verify_build']}"
                + (
                    f": ExSetup.exe {show(self.target_build)}, AdminDisplayVersion on its CU"
                    if self.target_build
                    else ": ExSetup.exe and AdminDisplayVersion on one CU"
                ),
                f"   e. {STEP_TITLES['exit_and_verify']}: {shlex.join(self.phase_command(m.name, 'postflight')[1:])}",
                f"      (the exit transition's steps: {exit_titles})",
            ]
        lines.append("Stops at the first member whose gate, transition, patch or verification fails; the next run resumes there.")
        return lines

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

    # ---- resuming after a kill ------------------------------------------------------------------

    def _done_earlier(self, m: str, step: str, done: list[str]) -> bool:
        """A step the killed (or stopped) run journaled as done is not repeated. The target gate is repeated
        until the member is entered (the lease it checks is only worth a fresh read); the enter is repeated
        when the member is found back in service before any patch command ran on it."""
        if step not in done:
            return False
        if step == "target_gate":
            return "gate_and_enter" in done
        if step == "gate_and_enter" and "patch" not in done and (m, "patch") not in self.resume.get("children", {}):
            try:
                signs = self._signs(m)
            except RemoteError:
                return True  # unreadable now: the patch step reads it again and refuses a member in service
            if not signs:
                self.progress(f"{m}: back in service since the earlier run entered it: entering again")
                return False
        return True

    def _signs(self, m: str) -> list[str]:
        return self._with_live(
            lambda live: in_maintenance(
                m, live.read(m, "components"), live.read(m, "cluster_nodes"), live.one(m, "mailbox_server")
            )
        )

    def _settle_children(self) -> None:
        """The killed run's children whose outcome it never journaled: each is waited for while it runs, its
        exit code taken when it ended, and one that never started is claimed so that it never will. Only then
        does this run go on, so that no second pytest run or installer ever runs beside the first."""
        for (m, step), child in self.resume.get("children", {}).items():
            if child.get("ended") or not child.get("base"):
                continue
            files = ChildFiles(Path(child["base"]))
            what = CHILD_KIND.get(step, step)
            if files.claim():
                child.update(ended=True, rc=None, never=True)
                self.journal.append(event="child_ended", member=m, step=step, base=str(files.base), rc=None, never_started=True)
                self.progress(f"{m}: the {what} of the earlier run never started; it is started afresh")
                continue
            pid = (files.owner() or {}).get("pid", "?")
            self.progress(
                f"{m}: waiting for the {what} of {m} started by the earlier run (pid {pid}) to finish; "
                "a second one is never started beside it"
            )
            quiet = f"  {m}: still waiting for the earlier run's {what} (pid {pid}), {{:.0f}} s so far"
            ended = supervise(
                files,
                None,
                self.patch.timeout if step == "patch" else None,
                on_line=lambda line: self.progress(f"    {line}"),
                on_quiet=partial(_say_seconds, self.progress, quiet),
                heartbeat=self.heartbeat,
            )
            child.update(ended=True, rc=ended.rc)
            self.journal.append(
                event="child_ended", member=m, step=step, base=str(files.base), rc=ended.rc, timed_out=ended.timed_out
            )
            self.progress(f"{m}: the earlier run's {what} ended: " + _ended_words(ended))

    def _entered_by_this_run(self, m: str) -> bool:
        """The member is in maintenance by an enter transition that this rolling run started and that completed
        (the server's journal says so): running that transition again would find its own claim and refuse it
        as another run's, so only the maintenance checks are run again."""
        since = self.resume.get("entered_at", {}).get(m)
        journal = Journal.for_server(self.reports_dir, m)
        if since is None or journal.where_it_stands() is not None:
            return False  # not entered by this run, or its transition is unfinished: --apply continues it
        started, entered = None, False
        for e in journal.entries():
            if e.get("event") == "transition_started":
                started = e
            elif e.get("event") == "transition_completed" and started is not None:
                entered = started.get("direction") == "enter" and str(started.get("time", "")) >= str(since)
        try:
            return entered and bool(self._signs(m))
        except RemoteError:
            return False

    def _launch_child(
        self, m: str, step: str, argv: list[str], env: dict[str, str], cwd: Path | None, timeout: float | None
    ) -> tuple[Ended, str]:
        """Run one child (see child.py) and stream its output; journaled before it starts and when it ends."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        files = ChildFiles(self.reports_dir.resolve() / "rolling-children" / f"{self.dag.lower()}-{m}-{step}-{stamp}")
        what = CHILD_KIND.get(step, step)
        self.journal.append(event="child_started", member=m, step=step, base=str(files.base))
        proc = launch(files, argv, env, cwd)
        self.journal.append(event="child_pid", member=m, step=step, pid=proc.pid)
        try:
            ended = supervise(
                files,
                proc,
                timeout,
                on_line=lambda line: self.progress(f"    {line}"),
                on_quiet=lambda s: self.progress(
                    f"  {m}: {what} running, {s:.0f} s so far"
                    + (f" of at most {timeout:g} s" if timeout else "")
                    + f" (pid {proc.pid})"
                ),
                heartbeat=self.heartbeat,
            )
        except KeyboardInterrupt:
            if step != "patch":
                signal_group(proc.pid, signal.SIGINT)  # its transition stops at its next safe point
            self.progress(
                f"{m}: interrupted (Ctrl-C): the {what} (pid {proc.pid}) "
                + (
                    "keeps running (an installer is not stopped half-way); "
                    if step == "patch"
                    else "is asked to stop at its next safe point; "
                )
                + f"`dagcheck rolling {self.dag} --apply` waits for it, then resumes"
            )
            raise
        self.journal.append(
            event="child_ended", member=m, step=step, base=str(files.base), rc=ended.rc, timed_out=ended.timed_out
        )
        return ended, files.output(OUTPUT_READ)

    # ---- the steps: each returns (ok, one line, output to journal) -------------------------------

    def _step_target_gate(self, m: str, before: dict[str, Build]) -> tuple[bool, str, str]:
        def read(live: Live) -> list[str]:
            ctx = Ctx(m, None, live, self.inventory, Journal.for_server(self.reports_dir, m))
            busy = [h for h in lease.others_holding(ctx)]
            problems = [lease.busy_refusal(ctx, busy)] if len(busy) >= lease.slots(ctx) else []
            if self.target_build is None:
                return problems
            builds = self._builds(live)
            dotnet = live.one(m, "dotnet").release
            windows = live.one(m, "windows_build").build
            problems += target_problems(
                self.target_build, m, before.get(m, builds[m]), dotnet, {o: b for o, b in builds.items() if o != m}, windows
            )
            return problems + window_parity(self.target_build, builds, before)

        problems = self._with_live(read)
        if problems:
            return False, "target gate refused: " + "; ".join(problems), ""
        return True, "", ""

    def _run_phase(self, m: str, phase: str, step: str, apply: bool = True) -> tuple[bool, str]:
        ended, output = self._launch_child(
            m, step, self.phase_command(m, phase, apply), {**os.environ, "PYTHONUNBUFFERED": "1"}, ROOT, None
        )
        return ended.rc == 0, output

    def _step_gate_and_enter(self, m: str, _: dict[str, Build]) -> tuple[bool, str, str]:
        earlier = self.resume.get("children", {}).get((m, "gate_and_enter"))
        if earlier is not None and earlier.get("rc") == 0:
            return (
                True,
                "completed by the earlier run (its pytest run exited 0)",
                ChildFiles(Path(earlier["base"])).output(OUTPUT_READ),
            )
        apply = not self._entered_by_this_run(m)
        ok, output = self._run_phase(m, "maintenance", "gate_and_enter", apply)
        note = "" if apply else "entered by the earlier run: its maintenance checks ran again, without entering again"
        if ok:
            return True, note, output
        return False, ("the pre-flight gate, the enter transition or the maintenance checks failed: " + _gist(output)), output

    def _step_patch(self, m: str, _: dict[str, Build]) -> tuple[bool, str, str]:
        earlier = self.resume.get("children", {}).get((m, "patch"))
        if earlier is not None and not earlier.get("never"):
            return self._patch_of_earlier_run(m, earlier)
        # One session for both looks (each session opens a runspace pool: about 2 s on a real server).
        current, signs = self._with_live(
            lambda live: (
                live.one(m, "exsetup").version if self.target_build is not None else None,
                in_maintenance(m, live.read(m, "components"), live.read(m, "cluster_nodes"), live.one(m, "mailbox_server")),
            )
        )
        if self.target_build is not None and current == self.target_build:
            return True, f"already on {show(self.target_build)}: nothing to install", ""
        if not signs:
            return False, f"{m} is not in maintenance: the patch step is not run on a server in service", ""
        if self.patch.command:
            ok, detail, output = self._patch_command(m)
            if not ok:
                return ok, detail, output
            back = self._wait_back(m, want_target=False)
            return back is None, back or detail, output
        if self.patch.pause:
            answer = self.confirm(
                f"Patch {m} now; type 'done' when it is patched and running again (anything else stops the rolling run): "
            )
            if answer.strip().lower() != "done":
                return False, f"the operator did not confirm the patch of {m} (answered {answer.strip()!r})", ""
            back = self._wait_back(m, want_target=False)
            return back is None, back or "the operator confirmed the patch", ""
        back = self._wait_back(m, want_target=True)
        return back is None, back or f"{m} reports {show(self.target_build)}", ""  # type: ignore[arg-type]

    def _patch_of_earlier_run(self, m: str, earlier: dict[str, Any]) -> tuple[bool, str, str]:
        """The killed run's patch command ran (it was waited for): its outcome stands; it is never run again."""
        files = ChildFiles(Path(earlier["base"]))
        output, rc = files.output(OUTPUT_READ), earlier.get("rc")
        if rc == 0:
            back = self._wait_back(m, want_target=False)
            return back is None, back or f"the patch command started by the earlier run exited 0: {_gist(output)}", output
        if rc is not None:
            return False, f"the patch command started by the earlier run exited {rc}: {_gist(output)}", output
        if self.target_build is not None:
            back = self._wait_back(m, want_target=True)
            if back is None:
                return (
                    True,
                    (
                        f"the patch command started by the earlier run ended without an exit status; "
                        f"{m} reports the target {show(self.target_build)}"
                    ),
                    output,
                )
        return (
            False,
            (
                f"the patch command started by the earlier run ended without an exit status (it was killed"
                f" or timed out; its output: {files.log}): whether {m} is patched is unknown, and it is not "
                f"started again blindly. Finish or check the patch of {m} by hand, then run the same command "
                "with --target-build (a member on the target is not patched again), or bring it back with "
                f"`dagcheck exit {m} --apply`"
            ),
            output,
        )

    def _patch_command(self, m: str) -> tuple[bool, str, str]:
        assert self.patch.command is not None
        argv = shlex.split(self.patch.command, posix=os.name != "nt")
        ended, output = self._launch_child(m, "patch", argv, {**os.environ, **self.patch_env(m)}, None, self.patch.timeout)
        if ended.timed_out:
            return False, f"the patch command did not finish within {self.patch.timeout:g} s (it was stopped)", output
        if ended.rc is None:
            return False, "the patch command ended without an exit status (killed by a signal)", output
        if ended.rc == 127 and "was not found" in output:
            return False, f"the patch command {argv[0]!r} was not found", output
        if ended.rc != 0:
            return False, f"the patch command exited {ended.rc}: {_gist(output)}", output
        return True, f"the patch command exited 0: {_gist(output)}", output

    def _wait_back(self, m: str, want_target: bool) -> str | None:
        """Poll until the member answers again (and, when asked, reports the target build) and Test-ServiceHealth
        finds every required service running; None when it does, else why not. A reboot makes it unreachable
        for a while, then its services start one by one: both are waited out, not failures. A line when what
        it sees changes, and at least every heartbeat."""
        deadline = time.monotonic() + self.patch.timeout
        last, said, said_at = "not read yet", "", 0.0
        while True:
            try:
                version, stopped = self._with_live(lambda live: self._coming_back(live, m, want_target))
                if not want_target or version == self.target_build:
                    if not stopped:
                        return None
                    last = f"answers; services not running yet: {', '.join(stopped)}"
                else:
                    last = f"reports {show(version)}"
            except RemoteError as exc:
                last = f"not answering ({str(exc)[:80]})"
            now = time.monotonic()
            if now >= deadline:
                return (
                    f"{m} did not come back"
                    + (f" on {show(self.target_build)}" if want_target and self.target_build else "")
                    + f" within {self.patch.timeout:g} s (last: {last})"
                )
            if last != said or now - said_at >= self.heartbeat:
                self.progress(f"  waiting for {m}: {last}; {deadline - now:.0f} s left")
                said, said_at = last, now
            self.sleep(self.patch.poll)

    def _coming_back(self, live: Live, m: str, want_target: bool) -> tuple[Build, list[str]]:
        """One look at a member coming back, in one session: its build, and (once it answers on the build
        awaited) the required services not running yet: answering is not started, after a restart the
        Exchange services come up one by one."""
        live.one(m, "exchange_server")
        version = live.one(m, "exsetup").version
        if want_target and version != self.target_build:
            return version, []
        return version, sorted({s for h in live.read(m, "services") for s in h.services_not_running})

    def _step_verify_build(self, m: str, before: dict[str, Build]) -> tuple[bool, str, str]:
        exsetup, adv = self._with_live(
            lambda live: (live.one(m, "exsetup").version, live.one(m, "exchange_server").admin_display_version)
        )
        if not same_cu(adv, exsetup):
            return False, f"ExSetup.exe {show(exsetup)} and AdminDisplayVersion {show(adv)} disagree on the CU", ""
        if self.target_build is None:
            was = before.get(m)
            return (
                True,
                (
                    f"now {show(exsetup)}"
                    + (f" (was {show(was)})" if was else "")
                    + ("; unchanged: no target build was given to hold it to" if was == exsetup else "")
                ),
                "",
            )
        if exsetup != self.target_build:
            return False, f"{m} reports ExSetup.exe {show(exsetup)}, not the target {show(self.target_build)}", ""
        return True, f"ExSetup.exe {show(exsetup)}, AdminDisplayVersion {show(adv)}", ""

    def _step_exit_and_verify(self, m: str, _: dict[str, Build]) -> tuple[bool, str, str]:
        earlier = self.resume.get("children", {}).get((m, "exit_and_verify"))
        if earlier is not None and earlier.get("rc") == 0:
            return (
                True,
                "completed by the earlier run (its pytest run exited 0)",
                ChildFiles(Path(earlier["base"])).output(OUTPUT_READ),
            )
        ok, output = self._run_phase(m, "postflight", "exit_and_verify")
        if ok:
            return True, "", output
        return False, "the exit transition or the post-maintenance checks failed: " + _gist(output), output

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


def _say_seconds(progress: Callable[[str], None], template: str, seconds: float) -> None:
    progress(template.format(seconds))


def _ended_words(ended: Ended) -> str:
    if ended.timed_out:
        return "it did not finish within the patch timeout and was stopped"
    return f"exit {ended.rc}" if ended.rc is not None else "without an exit status (it was killed)"


def _gist(output: str) -> str:
    """The lines of a run's output that say why: failures, refusals, the gate's verdict, else the last line."""
    keep = [
        line.strip()
        for line in output.splitlines()
        if line.startswith(("FAILED", "ERROR")) or "REFUSED" in line or "STOPPED" in line or "dagcheck gate" in line
    ]
    if not keep:
        keep = [line.strip() for line in output.splitlines() if line.strip()][-1:]
    text = " | ".join(keep[:6])
    return text[:600] + ("…" if len(text) > 600 else "")


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
