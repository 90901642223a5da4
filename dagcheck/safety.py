"""A run's safety rails on the client side: misuse refused before anything is sent, the verdict and exit
status (an unhealthy DAG, a blind run, or both), and progress lines that reach the terminal as they happen.

Exit statuses keep pytest's meanings (0 all passed, 1 a check failed, 2 interrupted, 3 internal error,
4 usage, 5 no checks collected) and add dagcheck's own, above pytest's range so that a scheduler can
branch on them without confusing them with pytest's: EXIT_BLIND (8) when some server could not be
checked (unreachable, its credentials rejected, throttled out) and every check that could be judged
passed; EXIT_UNHEALTHY_AND_BLIND (9 = 8 + 1) when, on top of that, a check failed. A run whose checks
would exit 0 but whose mail was due and not sent exits dagcheck.report.mail.EXIT_MAIL_FAILED (10).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from dagcheck.inventory import Inventory

EXIT_BLIND = 8
EXIT_UNHEALTHY_AND_BLIND = 9
CHANGING_PHASES = ("maintenance", "postflight")


def _explicit(config: pytest.Config, option: str) -> bool:
    """The option was typed (not just its default)."""
    return any(a == option or a.startswith(option + "=") for a in config.invocation_params.args)


def misuse(config: pytest.Config, inventory: Inventory) -> str | None:
    """A combination of options that cannot mean what the operator wants: one line that says why and
    what to type instead, found before the lab starts or any request is sent."""
    phase, cycle, apply = config.getoption("--phase"), config.getoption("--cycle"), config.getoption("--apply")
    servers = config.getoption("--server") or []
    target = config.getoption("--target")
    if cycle and _explicit(config, "--phase"):
        return f"--cycle runs pre-flight, maintenance and post-maintenance itself: drop --phase {phase}"
    if apply and not cycle and phase not in CHANGING_PHASES:
        return (
            f"--apply with --phase {phase} has nothing to apply (only --phase maintenance, --phase postflight "
            "and --cycle change servers): drop --apply"
        )
    if apply and phase == "postflight" and len(servers) != 1:
        return "--phase postflight --apply acts on one server: name it with --server"
    if target and servers and (cycle or phase == "maintenance"):
        server = inventory.server(servers[0])
        other = inventory.server(target)
        dag = inventory.dag_of(server.name)
        members = [m for m in (dag.members if dag else []) if m.lower() != server.name.lower()]
        hint = f" (e.g. --target {members[0]})" if members else ""
        if other.name.lower() == server.name.lower():
            return (
                f"--target {target} is the server entering maintenance: its messages must go to another "
                f"member{' of ' + dag.name if dag else ''}{hint}"
            )
        if dag is None or other.dag is None or other.dag.lower() != dag.name.lower():
            where = f"DAG {other.dag}" if other.dag else "no DAG"
            return (
                f"--target {target} is in {where}, {server.name} in {'DAG ' + dag.name if dag else 'no DAG'}: the "
                f"messages go to a member of the same DAG{hint}"
            )
    return None


# ---- the verdict --------------------------------------------------------------------------------------


@dataclass
class Verdict:
    exit_code: int
    unhealthy: list[Any] = field(default_factory=list)  # failed reports that fail the gate
    blind: dict[str, Any] = field(default_factory=dict)  # server -> remote.base.Blind
    blind_reports: list[Any] = field(default_factory=list)  # failed only because their server could not be read
    stopped: list[Any] = field(default_factory=list)  # refused or stopped transitions
    warnings: int = 0
    not_checked: list[str] = field(default_factory=list)  # "mbx2 (planned maintenance: reason, by, until)"
    mail_failure: str = ""  # the mail was due and not sent (dagcheck.report.mail.EXIT_MAIL_FAILED)

    def blind_lines(self) -> list[str]:
        """One line per reason (servers sharing one rejected account share one line), with its count."""
        by_reason: dict[str, list[Any]] = {}
        for b in self.blind.values():
            by_reason.setdefault(b.reason, []).append(b)
        out = []
        for reason, group in by_reason.items():
            names = {b.server.lower() for b in group}
            count = sum(
                1 for r in self.blind_reports if str((getattr(r, "dagcheck", None) or {}).get("server", "")).lower() in names
            )
            out.append(
                f"COULD NOT CHECK {', '.join(b.server for b in group)} ({group[0].kind}): {reason}"
                + (f" [{count} check(s) not judged]" if count else "")
            )
        return out

    def line(self) -> str:
        parts = []
        if self.unhealthy or self.stopped:
            what = []
            if self.unhealthy:
                what.append(f"{len(self.unhealthy)} check(s) failed")
            for result in self.stopped:
                verb = "entering" if result.direction == "enter" else "leaving"
                what.append(f"{verb} maintenance on {result.server} was {'refused' if result.refusals else 'stopped'}")
            parts.append(f"UNHEALTHY ({'; '.join(what)})")
        if self.blind:
            parts.append("BLIND (could not check " + ", ".join(f"{b.server}: {b.kind}" for b in self.blind.values()) + ")")
        if not parts:
            checked = (
                "every server checked"
                if not self.not_checked
                else f"{len(self.not_checked)} server(s) not checked: {'; '.join(self.not_checked)}"
            )
            parts.append(
                f"{checked}, the gate passes"
                + (f" ({self.warnings} warning(s) failed, which do not fail it)" if self.warnings else "")
            )
        elif self.not_checked:
            parts.append(f"not checked: {'; '.join(self.not_checked)}")
        if self.mail_failure:
            parts.append(f"MAIL NOT SENT ({self.mail_failure})")
        return f"dagcheck exit {self.exit_code}: " + " and ".join(parts)


def _text(report: Any) -> str:
    return str(getattr(report, "longreprtext", "") or getattr(report, "longrepr", "") or "")


def verdict(failed: Sequence[Any], blind: dict[str, Any], stopped: Iterable[Any], strict_warnings: bool) -> Verdict:
    """Which failures are the DAG's and which only say a server could not be read, and the exit status."""
    reasons = [b.reason for b in blind.values()]
    blind_reports = [r for r in failed if _text(r).startswith("could not collect") and any(x in _text(r) for x in reasons)]
    rest = [r for r in failed if r not in blind_reports]
    warnings = [r for r in rest if (getattr(r, "dagcheck", None) or {}).get("severity") == "warning"]
    unhealthy = rest if strict_warnings else [r for r in rest if r not in warnings]
    stopped = list(stopped)
    sick = bool(unhealthy or stopped)
    code = (
        EXIT_UNHEALTHY_AND_BLIND
        if sick and blind
        else EXIT_BLIND
        if blind
        else int(pytest.ExitCode.TESTS_FAILED)
        if sick
        else int(pytest.ExitCode.OK)
    )
    return Verdict(code, unhealthy, dict(blind), blind_reports, stopped, len(warnings) if not strict_warnings else 0)


# ---- live output ---------------------------------------------------------------------------------------


def live_writer(config: pytest.Config) -> Callable[[str], None]:
    """A line to the terminal now, also while pytest captures output (without -s): capture is suspended
    for the write, as capsys.disabled() does. Safe from several threads."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    lock = threading.Lock()

    def write(line: str) -> None:
        if reporter is None:
            return
        with lock:
            if capman is not None:
                with capman.global_and_fixture_disabled():
                    reporter.write_line(line)
            else:
                reporter.write_line(line)

    return write


class CollectionProgress:
    """Per-server progress of collection, at most one line every `interval` seconds (a nightly run over
    many servers shows where it is), and a server that turns out blind at once, with its one reason."""

    LISTED = 16  # up to a DAG's worth of servers, each is named with its count
    NAMED = 5  # beyond that, how many laggards and how many blind servers are named

    def __init__(self, write: Callable[[str], None], interval: float = 5.0) -> None:
        self.write = write
        self.interval = interval
        self.active = True
        self._calls: dict[str, int] = {}
        self._blind: dict[str, str] = {}
        self._reasons: set[str] = set()
        self._started = self._last = time.monotonic()
        self._lock = threading.Lock()

    def call(self, invocation: Any) -> None:
        with self._lock:
            self._calls[invocation.server] = self._calls.get(invocation.server, 0) + 1
            now = time.monotonic()
            due = self.active and now - self._last >= self.interval
            if due:
                self._last = now
        if due:
            self.write(self.line(f"collecting ({now - self._started:.0f} s)"))

    def blind(self, blind: Any) -> None:
        with self._lock:
            said = blind.reason in self._reasons
            self._blind[blind.server] = blind.kind
            self._reasons.add(blind.reason)
        if not said:  # the servers that share a reason (one account) are listed in the summary at the end
            self.write(f"{blind.server}: could not be checked ({blind.kind}): {blind.reason}")

    def line(self, head: str) -> str:
        """Every server by name while they fit on a line (LISTED or fewer); beyond that the totals, the
        servers that could not be checked, and the ones with the fewest answers so far (the laggards), so
        that a nightly run over hundreds of servers prints a line, not a page, every few seconds."""
        with self._lock:
            names = sorted(set(self._calls) | set(self._blind))
            calls = dict(self._calls)
            blind = dict(self._blind)
        if len(names) <= self.LISTED:
            parts = [f"{n} {blind[n]}" if n in blind else f"{n} {calls[n]} call(s)" for n in names]
            return f"{head}: " + ", ".join(parts)
        text = f"{head}: {len(names)} servers, {sum(calls.values()):,} call(s)"
        if blind:
            shown = sorted(blind)[: self.NAMED]
            more = f" and {len(blind) - len(shown)} more" if len(blind) > len(shown) else ""
            text += f"; {len(blind)} not checkable: {', '.join(f'{n} ({blind[n]})' for n in shown)}{more}"
        answering = sorted((c, n) for n, c in calls.items() if n not in blind)
        if answering and answering[0][0] != answering[-1][0]:
            text += "; fewest so far: " + ", ".join(f"{n} {c}" for c, n in answering[: self.NAMED])
        return text

    def finish(self) -> None:
        if self.active and (self._calls or self._blind):
            self.write(self.line(f"collected in {time.monotonic() - self._started:.1f} s"))
        self.active = False
