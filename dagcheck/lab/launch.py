"""Starting a standalone lab (`python -m dagcheck.lab serve`) from another program, and knowing when it serves.

The test suite's persistent labs and the benchmarks start the lab as a process of its own. The lab prints READY
once its servers listen and its signal handlers are in place (dagcheck/lab/__main__.py): whoever has read that
line may connect to it, or signal it, at once. One definition of that line and of the wait for it, so that the
lab and those who wait for it cannot drift apart.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

READY = "Ctrl-C stops the lab."
# What a failed start shows of the lab's own output (its error is in the last lines).
SHOWN_LINES = 20


class LabDidNotStart(RuntimeError):
    """The lab ended before it served; the message carries its exit status and its last lines of output."""


def serve_command(*options: str) -> list[str]:
    """The command line of `python -m dagcheck.lab serve` with these options, in this interpreter."""
    return [sys.executable, "-m", "dagcheck.lab", "serve", *options]


def start(
    options: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    popen: Callable[..., subprocess.Popen[str]] = subprocess.Popen,
    exit_wait: float = 10.0,
) -> subprocess.Popen[str]:
    """Start the lab and return its process once it serves. popen starts the process (the test suite passes the
    one that ties its children to it). Its output after READY is read and dropped by a thread of its own:
    nobody reads it, and a lab that logs more than a pipe holds would otherwise stop in the middle of a run."""
    proc = popen(serve_command(*options), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen: deque[str] = deque(maxlen=SHOWN_LINES)
    for line in proc.stdout:
        if line.rstrip("\r\n") == READY:
            threading.Thread(target=_drain, args=(proc.stdout,), name=f"lab-output-{proc.pid}", daemon=True).start()
            return proc
        seen.append(line.rstrip("\r\n"))
    status = proc.wait(exit_wait)
    shown = "\n".join(f"  {line}" for line in seen) or "  (no output)"
    raise LabDidNotStart(f"the lab did not start (exit {status}); its last output:\n{shown}")


def _drain(stream: Any) -> None:
    for _ in stream:
        pass
