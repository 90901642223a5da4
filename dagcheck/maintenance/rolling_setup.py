"""What a rolling run is given, checked before anything starts, and how it looks at the DAG.

The options (the DAG, the patch step, the target build, apply or not) are refused here with a message that
says what to change, before the plan is printed or any member is touched. The looks at the DAG live here too
because every other part of a rolling run needs them (the order, the gate, the patch's waits, the state a
stopped member was left in), and each opens a fresh session: a member that rebooted has dropped every
connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagcheck.errors import RemoteError
from dagcheck.files import private_dir
from dagcheck.inventory import Inventory
from dagcheck.maintenance.journal import Journal
from dagcheck.maintenance.live import Live
from dagcheck.rules.builds import Build, show
from dagcheck.rules.dag import in_maintenance
from dagcheck.rules.rolling import MemberFacts, rolling_order
from dagcheck.session import DagcheckSession

HEARTBEAT = 10.0  # seconds: while anything runs, a line at least this often (issue 26: never 15 s of silence)


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
class RollingSetup:
    """A rolling run's options and its fresh reads of the DAG; the parts of the run build on it (rolling.py)."""

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

    def _signs(self, m: str) -> list[str]:
        return self._with_live(
            lambda live: in_maintenance(
                m, live.read(m, "components"), live.read(m, "cluster_nodes"), live.one(m, "mailbox_server")
            )
        )
