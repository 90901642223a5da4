"""Resuming a rolling run that was stopped or killed, from its journal (reports/rolling-<dag>.jsonl).

A resumed run repeats nothing that is done and starts nothing twice: it reads what the earlier run did
(unfinished), waits for the children that run left running (_settle_children), skips the steps it journaled
as done unless the member's state says otherwise (_done_earlier), and does not enter a member again that its
own earlier enter already put in maintenance (_entered_by_this_run).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from dagcheck.errors import RemoteError
from dagcheck.maintenance.child import ChildFiles, Ended, supervise
from dagcheck.maintenance.journal import Journal
from dagcheck.maintenance.rolling_children import CHILD_KIND, RollingChildren


class RollingResume(RollingChildren):
    """What an earlier, unfinished run did, and settling it before this run goes on."""

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


def _say_seconds(progress: Callable[[str], None], template: str, seconds: float) -> None:
    progress(template.format(seconds))


def _ended_words(ended: Ended) -> str:
    if ended.timed_out:
        return "it did not finish within the patch timeout and was stopped"
    return f"exit {ended.rc}" if ended.rc is not None else "without an exit status (it was killed)"
