"""The patch step of a member's turn and its waits: a local command, the operator's confirmation, or a
wait for the target build; then the wait until the member answers again with its services running.

A patch is the one step that is never repeated blindly: an installer of a killed run keeps its outcome
(_patch_of_earlier_run), and a member on the target build is not patched again.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any

from dagcheck.errors import RemoteError
from dagcheck.maintenance.child import ChildFiles
from dagcheck.maintenance.live import Live
from dagcheck.maintenance.rolling_children import OUTPUT_READ, RollingChildren, gist
from dagcheck.rules.builds import Build, show
from dagcheck.rules.dag import in_maintenance


class RollingPatch(RollingChildren):
    """The patch step (each way of patching) and the waits for a member coming back."""

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
            return back is None, back or f"the patch command started by the earlier run exited 0: {gist(output)}", output
        if rc is not None:
            return False, f"the patch command started by the earlier run exited {rc}: {gist(output)}", output
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
            return False, f"the patch command exited {ended.rc}: {gist(output)}", output
        return True, f"the patch command exited 0: {gist(output)}", output

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
