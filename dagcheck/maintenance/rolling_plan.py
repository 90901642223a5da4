"""A rolling run's plan: its steps, the command behind each, and the lines the dry run prints.

The plan is what the operator approves: the same lines open an applied run, and the commands they show are
the ones the run starts (phase_command, patch_env), so what was read is what runs.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

from dagcheck.maintenance.journal import Journal
from dagcheck.maintenance.live import Live
from dagcheck.maintenance.rolling_setup import RollingSetup
from dagcheck.maintenance.runner import Transition
from dagcheck.maintenance.steps import exit_steps
from dagcheck.options import ROOT
from dagcheck.rules.builds import show
from dagcheck.rules.dag import choose_target
from dagcheck.rules.rolling import MemberFacts, explain

STEPS = ("target_gate", "gate_and_enter", "patch", "verify_build", "exit_and_verify")
STEP_TITLES = {
    "target_gate": "target gate (the target build's needs, the DAG's builds, the lease)",
    "gate_and_enter": "pre-flight gate, enter maintenance, maintenance checks",
    "patch": "patch step",
    "verify_build": "the member reports the target build",
    "exit_and_verify": "exit maintenance, post-maintenance checks",
}
# Test-suite plugins a phase run never uses, not loaded (when installed) in its start-up: with them, every
# pytest start took 10 to 15 s longer on a loaded 2-core machine, twice per member (benchmarks/README.md).
SKIP_PLUGINS = ("-p", "no:xdist", "-p", "no:hypothesispytest")


class RollingPlan(RollingSetup):
    """Each member's steps and commands, printed before anything runs (the whole output of a dry run)."""

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
