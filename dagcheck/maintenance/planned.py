"""Planned or forgotten: how the nightly run judges a member that shows signs of maintenance.

A member in maintenance is *planned* while a maintenance window of the inventory covers it (the
server, or its whole DAG for a rolling patch) or while a dagcheck transition on it is current (its
journal on this host shows one started and not finished, or an entry completed less than
ENTERED_GRACE ago and no exit since). Its service checks are then skipped with one sentence saying
since when, by whom and until when. Any other member in maintenance is *forgotten* — one of the
commonest real incidents — and DAG-MAINT-001 reports it as a single critical finding.

`judge` is pure (the checks and the plugin call it with collected snapshots); `transition_on_record`
reads the journal and is called from a fixture only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from dagcheck.collect import Collector, SourceFailed
from dagcheck.inventory import Inventory, MaintenanceWindow
from dagcheck.maintenance.journal import Journal
from dagcheck.rules.dag import in_maintenance, lease_since

# How long a completed `--phase maintenance --apply` counts as current without a declared window:
# long enough for a CU (typically 1-3 hours plus reboots), short enough that a member left in
# maintenance over a weekend is reported. Guessed: no Microsoft guidance names a figure.
ENTERED_GRACE = dt.timedelta(hours=12)


@dataclass(frozen=True)
class Transition:
    """A dagcheck transition on record for a server (from its journal)."""

    direction: str
    started: dt.datetime
    finished: bool
    journal: str

    def current(self, now: dt.datetime) -> bool:
        if not self.finished:
            return True
        return self.direction == "enter" and now - self.started <= ENTERED_GRACE


@dataclass(frozen=True)
class MaintenanceState:
    """A member that shows signs of maintenance, planned (covered) or forgotten."""

    server: str
    planned: bool
    since: dt.datetime | None
    signs: tuple[str, ...]
    by: str = ""
    until: dt.datetime | None = None
    reason: str = ""
    window: MaintenanceWindow | None = None
    unreachable: str | None = None  # covered by a window, and not answering now (e.g. rebooting after its patch)

    def _since(self) -> str:
        return self.since.isoformat(timespec="seconds") if self.since else "an unknown time (no Maintenance timestamp)"

    def describe(self) -> str:
        if self.planned:
            until = self.until.isoformat(timespec="seconds") if self.until else "the end of the transition"
            down = (
                f"; not answering now, as a member rebooting after its patch may not: {self.unreachable}"
                if self.unreachable
                else ""
            )
            return (
                f"{self.server} is in planned maintenance since {self._since()}, by {self.by}, until {until} "
                f"({self.reason}){down}"
            )
        return f"{self.server} is forgotten in maintenance since {self._since()}: {self.reason} ({', '.join(self.signs)})"

    def skip_reason(self) -> str:
        if self.planned:
            return self.describe()
        return f"covered by DAG-MAINT-001: {self.describe()}"


def _window_for(
    server: str, dag: str | None, windows: Iterable[MaintenanceWindow], now: dt.datetime
) -> tuple[MaintenanceWindow | None, MaintenanceWindow | None]:
    """(the current window covering the server, else the latest one that ended)."""
    covering = [w for w in windows if w.covers(server, dag)]
    current = next((w for w in covering if w.current(now)), None)
    ended = max((w for w in covering if w.end < now), key=lambda w: w.end, default=None)
    return current, ended


def judge(
    server: str,
    dag: str | None,
    signs: Iterable[str],
    since: dt.datetime | None,
    windows: Iterable[MaintenanceWindow],
    transition: Transition | None,
    now: dt.datetime,
) -> MaintenanceState | None:
    """None when the member is fully in service; otherwise whether its maintenance is planned, and why."""
    signs = tuple(signs)
    if not signs:
        return None
    current, ended = _window_for(server, dag, windows, now)
    if current is not None:
        return MaintenanceState(server, True, since or current.start, signs, current.by, current.end, current.reason, current)
    if transition is not None and transition.current(now):
        what = "in progress" if not transition.finished else "completed, exit not run yet"
        until = None if not transition.finished else transition.started + ENTERED_GRACE
        return MaintenanceState(
            server,
            True,
            since or transition.started,
            signs,
            f"dagcheck ({transition.journal})",
            until,
            f"the {transition.direction} transition started {transition.started.isoformat(timespec='seconds')} is {what}",
        )
    if ended is not None:
        why = f"its maintenance window ended {ended.end.isoformat(timespec='seconds')} ({ended.reason}, by {ended.by})"
    else:
        why = "no current maintenance window or transition covers it"
    return MaintenanceState(server, False, since, signs, reason=why, window=ended)


def transition_on_record(reports_dir: str | Path, server: str) -> Transition | None:
    """The latest transition in this host's journal for the server, or None when there is no journal."""
    path = Path(reports_dir) / f"journal-{server.lower()}.jsonl"
    if not path.exists():
        return None
    latest: Transition | None = None
    for e in Journal(path).entries():
        event = e.get("event")
        try:
            stamp = dt.datetime.fromisoformat(str(e.get("time")))
        except ValueError:
            continue
        if event == "transition_started":
            latest = Transition(str(e.get("direction")), stamp, False, str(path))
        elif event == "transition_completed" and latest is not None:
            # A refusal is journaled before any start and changes nothing on the server: it is not a transition.
            latest = Transition(latest.direction, latest.started, True, latest.journal)
    return latest


def state_of(
    collector: Collector, inventory: Inventory, server: str, phase: str, reports_dir: str | Path, now: dt.datetime
) -> MaintenanceState | None:
    """The member's maintenance state from the phase's memoized snapshot (the sources the phase's checks
    read anyway: no extra remote call) and this host's journal. None when it is in service or when its
    sources could not be collected (its own checks report that)."""
    snap = collector.snapshot(server, phase)
    try:
        components = snap.get("components")
        signs = in_maintenance(server.lower(), components, snap.get("cluster_nodes"), snap.get("mailbox_server")[0])
    except SourceFailed as exc:
        return _unreachable_in_window(inventory, server, str(exc), reports_dir, now)
    except IndexError:
        return None
    member = inventory.server(server)
    return judge(
        member.name,
        member.dag,
        signs,
        lease_since(components),
        inventory.maintenance_windows,
        transition_on_record(reports_dir, server),
        now,
    )


def _unreachable_in_window(
    inventory: Inventory, server: str, error: str, reports_dir: str | Path, now: dt.datetime
) -> MaintenanceState | None:
    """A member that cannot be read while a current window or transition covers it: planned (a patch
    reboots the server), said with the reason it does not answer. Outside any window it is no
    maintenance state: its checks fail with the reason, as for any unreachable server."""
    member = inventory.server(server)
    current, _ = _window_for(member.name, member.dag, inventory.maintenance_windows, now)
    if current is not None:
        return MaintenanceState(
            member.name,
            True,
            current.start,
            ("unreachable",),
            current.by,
            current.end,
            current.reason,
            current,
            unreachable=error,
        )
    transition = transition_on_record(reports_dir, server)
    if transition is not None and transition.current(now) and transition.direction == "enter":
        return MaintenanceState(
            member.name,
            True,
            transition.started,
            ("unreachable",),
            f"dagcheck ({transition.journal})",
            None if not transition.finished else transition.started + ENTERED_GRACE,
            f"the enter transition started {transition.started.isoformat(timespec='seconds')}",
            unreachable=error,
        )
    return None


def current_windows(inventory: Inventory, dag: str | None, now: dt.datetime) -> list[MaintenanceWindow]:
    """Windows in progress now for a DAG or for any of its members (what DAG-BUILD-002 relaxes for)."""
    if dag is None:
        return []
    members = {m.lower() for m in inventory.dag(dag).members}
    return [
        w
        for w in inventory.maintenance_windows
        if w.current(now) and ((w.dag or "").lower() == dag.lower() or (w.server or "").lower() in members)
    ]


def rolling_on_record(reports_dir: str | Path, dag: str) -> MaintenanceWindow | None:
    """A `dagcheck rolling DAG` run in progress on this host, read from its journal
    (reports/rolling-<dag>.jsonl), as a window of the whole DAG: from its start until ENTERED_GRACE
    after its latest entry (a run silent that long is abandoned, its member forgotten). A stopped run
    still counts: it resumes where it stopped, and until then the DAG is legitimately half-patched.
    None when no run is unfinished. Read here rather than through maintenance.rolling, which drives
    the run; the journal's event names are its contract."""
    path = Path(reports_dir) / f"rolling-{dag.lower()}.jsonl"
    if not path.exists():
        return None
    started: dict | None = None
    last: dt.datetime | None = None
    stopped = ""
    for e in Journal(path).entries():
        try:
            stamp = dt.datetime.fromisoformat(str(e.get("time")))
        except ValueError:
            continue
        event = e.get("event")
        if event == "rolling_started":
            started, stopped = {**e, "start": stamp}, ""
        elif started is None:
            continue
        elif event == "rolling_completed":
            started = None
            continue
        elif event == "rolling_stopped":
            stopped = f", stopped at {e.get('member')} ({e.get('step')})"
        elif event == "rolling_resumed":
            stopped = ""
        last = stamp
    if started is None:
        return None
    target = started.get("target")
    return MaintenanceWindow(
        start=started["start"],
        end=max(last or started["start"], started["start"]) + ENTERED_GRACE,
        reason=f"dagcheck rolling run{' to ' + target if target else ''}{stopped}",
        by=f"dagcheck rolling ({path})",
        dag=dag,
        target_build=target or None,
    )


def with_rolling_windows(inventory: Inventory, reports_dir: str | Path) -> Inventory:
    """The inventory with a window per DAG whose rolling run is in progress on this host."""
    found = tuple(w for d in inventory.dags if (w := rolling_on_record(reports_dir, d.name)) is not None)
    return replace(inventory, maintenance_windows=inventory.maintenance_windows + found) if found else inventory
