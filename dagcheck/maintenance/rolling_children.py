"""The children of a rolling run (phase runs, patch commands): started, streamed and journaled.

Each child is journaled before it starts and when it ends, so that a run killed while a child runs leaves
enough behind for the next one to wait for that child instead of starting a second beside it
(rolling_resume.py). The process mechanics (own session, log file, claim) are child.py's.
"""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

from dagcheck.maintenance.child import ChildFiles, Ended, launch, signal_group, supervise
from dagcheck.maintenance.rolling_plan import RollingPlan

OUTPUT_READ = 1_000_000  # bytes of a child's log read back to find why it failed (its tail; the log stays whole)
CHILD_KIND = {
    "gate_and_enter": "pytest run (pre-flight gate, enter, maintenance checks)",
    "exit_and_verify": "pytest run (exit, post-maintenance checks)",
    "patch": "patch command",
}


class RollingChildren(RollingPlan):
    """Starts one child at a time and streams its output as progress lines."""

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


def gist(output: str) -> str:
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
