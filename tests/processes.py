"""The test suite's own child processes (persistent labs, dagcheck runs) and how long a test waits for them.

Every lab a test starts dies with the test process: it runs in its own process group (a Ctrl-C at the
terminal reaches pytest, which stops it in order), the kernel sends it SIGTERM if the pytest process (an
xdist worker too) dies without cleaning up (PR_SET_PDEATHSIG, Linux), and whatever is still running when
the session ends, or when pytest is told to stop with SIGTERM, is killed with its group.

Waits are budgets against a hang, never a measure of speed: `budget(seconds)` scales the nominal figure by
how loaded the machine is now (1-minute load average per core, at least 1) and a margin of 3, so that a
suite sharing 2 cores with other CPU-bound work still passes. DAGCHECK_TEST_TIME_SCALE overrides the
factor (e.g. 10 on a very slow machine).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagcheck.lab import launch

MARGIN = 3.0
PR_SET_PDEATHSIG = 1

_children: list[subprocess.Popen[Any]] = []
_lock = threading.Lock()


def time_scale() -> float:
    """How much longer than nominal a wait may take here and now."""
    if override := os.environ.get("DAGCHECK_TEST_TIME_SCALE"):
        return max(1.0, float(override))
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:  # no load average on this platform
        load = 1.0
    return MARGIN * max(1.0, load)


def budget(seconds: float) -> float:
    """A generous upper bound for something that takes about `seconds` on a quiet machine."""
    return seconds * time_scale()


def until(what: str, condition: Callable[[], bool], seconds: float, poll: float = 0.05) -> None:
    """Wait for a condition, failing with `what` once budget(seconds) has passed without it."""
    limit = budget(seconds)
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {limit:g} s"
        time.sleep(poll)


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def prepare() -> None:  # runs in the child between fork and exec
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return prepare


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """subprocess.Popen for a process the suite owns: its own group, dying with the test process, and killed
    (with its group) at the end of the session if a test left it running."""
    proc = subprocess.Popen(args, start_new_session=True, preexec_fn=_die_with_parent(), **kwargs)  # noqa: PLW1509
    with _lock:
        _children[:] = [p for p in _children if p.poll() is None]
        _children.append(proc)
    return proc


def kill_all() -> int:
    """Kill every process the suite started that still runs, with its group; returns how many there were."""
    with _lock:
        running = [p for p in _children if p.poll() is None]
        _children.clear()
    for proc in running:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    return len(running)


def stop_on_sigterm() -> None:
    """On SIGTERM (CI's timeout, a killed xdist controller), kill the suite's processes, then exit as SIGTERM
    would have."""
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        kill_all()
        if callable(previous):
            previous(signum, frame)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def run(args: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """subprocess.run(..., capture_output=True, text=True) for a process the suite owns (see spawn): on a
    timeout, its whole group is killed before TimeoutExpired reaches the test."""
    proc = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def serve_lab(source: Path, state: Path, inventory: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """`python -m dagcheck.lab serve --state` for an inventory, owned by the suite (see spawn), returned once it
    serves (dagcheck.lab.launch); it writes the inventory that points dagcheck at it."""
    options = ["--inventory", str(source), "--state", str(state), "--write-inventory", str(inventory)]
    return launch.start(options, env=env, cwd=cwd, popen=spawn, exit_wait=budget(10))


def stop_lab(proc: subprocess.Popen[str]) -> None:
    """Stop a lab started by serve_lab as Ctrl-C would (SIGTERM: it saves its state once more, then exits)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(budget(20))
