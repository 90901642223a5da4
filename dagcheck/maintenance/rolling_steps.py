"""The other steps of a member's turn: the target gate, the gate and enter, the build check, the exit.

Each returns (ok, one line for the operator, output to journal), so the per-member loop (rolling.py) treats
every step alike; the gate, enter and exit are whole pytest runs of the single-server machinery, so a
member's turn in a rolling run is exactly a hand-driven cycle. The patch step is rolling_patch.py's.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagcheck.maintenance import lease
from dagcheck.maintenance.child import ChildFiles
from dagcheck.maintenance.journal import Journal
from dagcheck.maintenance.live import Live
from dagcheck.maintenance.rolling_children import OUTPUT_READ, gist
from dagcheck.maintenance.rolling_resume import RollingResume
from dagcheck.maintenance.steps import Ctx
from dagcheck.options import ROOT
from dagcheck.rules.builds import Build, same_cu, show
from dagcheck.rules.rolling import target_problems, window_parity


class RollingSteps(RollingResume):
    """The target gate, the pre-flight gate and enter, the build check, the exit and post-maintenance checks."""

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
        return False, ("the pre-flight gate, the enter transition or the maintenance checks failed: " + gist(output)), output

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
        return False, "the exit transition or the post-maintenance checks failed: " + gist(output), output
