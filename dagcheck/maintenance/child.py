"""The processes a rolling run starts (each member's pytest phases, the patch command), made to survive the run
being killed without ever running twice.

A rolling run can be killed with kill -9 at any moment, and an installer stopped half-way leaves a server
worse off than one left to finish (Exchange Setup then has to be run again by hand). So a child is not tied
to its run: it starts in a session of its own (a Ctrl-C or a closed terminal of the run does not reach it),
writes its output to a file (no pipe that breaks, with a SIGPIPE, when the run dies), and a small wrapper
(this module's main) records who it is and how it ended, next to the log:

    <base>.pid   {"pid": ..., "start": ...}: created exclusively (O_EXCL) by the wrapper before it runs anything
    <base>.log   the command's stdout and stderr
    <base>.rc    {"rc": ...}: written (atomically) when the command has ended

The run journals <base> before it starts the wrapper. The run resumed after a kill finds that entry and then:
the command ended (<base>.rc): its exit code is used as if the run had seen it; it is still running (its pid
alive, with the same start time, so a reused pid is not mistaken for it): it is waited for; it never started:
the resumed run creates <base>.pid itself first, so a wrapper that starts only now finds it taken and runs
nothing (no second installer, ever); it died without a status (killed by someone): the outcome is unknown and
said so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

OWNER_GRACE = 10.0  # seconds a resumed run gives a wrapper to write the pid file it has just created
NEVER_STARTED = 125  # the wrapper's exit when a resumed run had already claimed its pid file: nothing ran


@dataclass(frozen=True)
class ChildFiles:
    """The three files of one child, named from one base path (journaled by the run)."""

    base: Path

    @property
    def pid_file(self) -> Path:
        return self.base.with_name(self.base.name + ".pid")

    @property
    def log(self) -> Path:
        return self.base.with_name(self.base.name + ".log")

    @property
    def rc_file(self) -> Path:
        return self.base.with_name(self.base.name + ".rc")

    def rc(self) -> int | None:
        """The command's exit code once it has ended, else None."""
        try:
            data = json.loads(self.rc_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data.get("rc") if isinstance(data, dict) and isinstance(data.get("rc"), int) else None

    def owner(self) -> dict[str, object] | None:
        """What the wrapper wrote about itself: pid and start time; {"claimed": ...} if a resumed run took it."""
        try:
            data = json.loads(self.pid_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def claim(self) -> bool:
        """Take the pid file for a resumed run; True when the child had not started (and now never will)."""
        try:
            fd = os.open(self.pid_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"claimed": os.getpid()}, f)
        return True

    def output(self, keep: int) -> str:
        """The log's tail (keep characters), for the journal and the report."""
        try:
            with self.log.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - keep))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), to tell it from a reused pid;
    None where it cannot be read (then the pid alone is trusted: guessed safe, it only makes a run wait)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of stat; fields[0] is field 3 (the state)


def alive(pid: int, started: object = None) -> bool:
    """The process runs and is the one that was recorded (same start time where it can be read). A zombie
    (ended, waiting for a parent to reap it: the killed run can no longer) does not run."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self/stat").exists():
        try:
            state = stat.read_text(encoding="ascii", errors="replace").rsplit(")", 1)[-1].split()[0]
        except (OSError, IndexError):
            return False
        if state in ("Z", "X"):
            return False
        return started is None or start_time(pid) in (None, started)
    try:  # no /proc (Windows, macOS): is there a process with this pid at all
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def launch(files: ChildFiles, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start argv through the wrapper, in a session (process group) of its own, output to the log."""
    files.base.parent.mkdir(parents=True, exist_ok=True)
    wrapper = [sys.executable, "-m", "dagcheck.maintenance.child", str(files.base), "--", *argv]
    extra: dict[str, object] = (
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]  # Windows only
        if os.name == "nt"
        else {"start_new_session": True}
    )
    return subprocess.Popen(
        wrapper, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **extra
    )  # type: ignore[call-overload]


def signal_group(pid: int, sig: int) -> None:
    """Signal the child's whole process group (the wrapper and the command it runs)."""
    try:
        if os.name == "nt":
            os.kill(pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]  # guessed: not exercised here
        else:
            os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError, OSError):
        pass


class LogTail:
    """The new whole lines of a growing log since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def lines(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        self.offset += len(data)
        data = self.partial + data
        *whole, self.partial = data.split(b"\n")
        return [line.decode("utf-8", errors="replace").rstrip("\r") for line in whole]

    def rest(self) -> list[str]:
        """At the end: the last line even without its newline."""
        lines = self.lines()
        if self.partial.strip():
            lines.append(self.partial.decode("utf-8", errors="replace"))
        self.partial = b""
        return lines


@dataclass(frozen=True)
class Ended:
    """How a child ended: rc None when it is unknown (it died without writing its status)."""

    rc: int | None
    timed_out: bool = False


def supervise(
    files: ChildFiles,
    proc: subprocess.Popen[bytes] | None,
    timeout: float | None,
    on_line: Callable[[str], None],
    on_quiet: Callable[[float], None],
    heartbeat: float,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = 0.2,
) -> Ended:
    """Wait for a child (ours: proc; a killed run's: proc None, known by its pid file), passing each line
    of its log on as it comes and calling on_quiet(seconds running) when no line came for `heartbeat`
    seconds. On timeout the child's group is terminated (then killed) and Ended(timed_out=True) returned."""
    tail = LogTail(files.log)
    started = time.monotonic()
    last_said = started
    owner = files.owner() if proc is None else None
    while True:
        for line in tail.lines():
            on_line(line)
            last_said = time.monotonic()
        if proc is None and owner is None:  # created an instant ago, not written yet: give the wrapper a moment
            owner = files.owner()
            if owner is None and time.monotonic() - started < OWNER_GRACE:
                sleep(poll)
                continue
        ended = _ended(files, proc, owner)
        if ended is not None:
            for line in tail.rest():
                on_line(line)
            return ended
        now = time.monotonic()
        if timeout is not None and now - started >= timeout:
            recorded = owner.get("pid") if owner else None
            pid = proc.pid if proc is not None else recorded if isinstance(recorded, int) else None
            if pid is not None:
                _stop_group(pid, proc)
            for line in tail.rest():
                on_line(line)
            return Ended(None, timed_out=True)
        if now - last_said >= heartbeat:
            on_quiet(now - started)
            last_said = now
        sleep(poll)


def _ended(files: ChildFiles, proc: subprocess.Popen[bytes] | None, owner: dict[str, object] | None) -> Ended | None:
    if proc is not None:
        code = proc.poll()
        if code is None:
            return None
        rc = files.rc()
        return Ended(rc if rc is not None else (None if code < 0 or code == NEVER_STARTED else code))
    rc = files.rc()
    if rc is not None:
        return Ended(rc)
    pid = owner.get("pid") if owner else None
    if isinstance(pid, int) and alive(pid, owner.get("start") if owner else None):
        return None
    rc = files.rc()  # it may have written its status between the two looks
    return Ended(rc)


def _stop_group(pid: int, proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if (proc.poll() is not None) if proc is not None else not alive(pid):
            return
        time.sleep(0.1)
    signal_group(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    if proc is not None:
        proc.wait(grace)


def _write_rc(files: ChildFiles, rc: int) -> None:
    tmp = files.rc_file.with_name(files.rc_file.name + ".tmp")
    tmp.write_text(json.dumps({"rc": rc}), encoding="utf-8")
    os.replace(tmp, files.rc_file)


def main(argv: list[str] | None = None) -> int:
    """The wrapper: `python -m dagcheck.maintenance.child BASE -- COMMAND...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m dagcheck.maintenance.child BASE -- COMMAND...", file=sys.stderr)
        return 2
    files, command = ChildFiles(Path(args[0])), args[2:]
    try:
        fd = os.open(files.pid_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return NEVER_STARTED  # a resumed run took it: it has decided this command does not run
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "start": start_time(os.getpid())}, f)
    # The wrapper outlives signals meant for its group (a timeout's SIGTERM, a forwarded Ctrl-C) long enough
    # to record how the command ended; a handler (not SIG_IGN) is reset to the default in the command.
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: None)
    with files.log.open("ab") as log:
        try:
            rc = subprocess.call(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            log.write(f"dagcheck: the command {command[0]!r} was not found\n".encode())
            rc = 127
        except OSError as exc:
            log.write(f"dagcheck: the command {command[0]!r} could not be started: {exc}\n".encode())
            rc = 126
    _write_rc(files, rc)
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
