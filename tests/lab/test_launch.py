"""Starting a standalone lab from another program (dagcheck.lab.launch): the suite's persistent labs and the
benchmarks wait on it for the line the lab prints once it serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dagcheck.lab import launch
from tests.conftest import ROOT
from tests.processes import budget, spawn


def test_a_lab_that_cannot_start_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yml"
    with pytest.raises(launch.LabDidNotStart) as failed:
        launch.start(["--inventory", str(missing)], env=dict(os.environ), cwd=ROOT, popen=spawn, exit_wait=budget(10))
    message = str(failed.value)
    assert "(exit 2)" in message and f"invalid inventory {missing}" in message  # the lab's own error, shown


def _chatty(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    """Stands in for the lab: says it serves, then writes four times what a pipe holds, and ends."""
    script = f"print({launch.READY!r}, flush=True)\nfor _ in range(256):\n    print('x' * 1023, flush=True)\n"
    return spawn([sys.executable, "-c", script], **kwargs)


def test_what_the_lab_writes_once_it_serves_is_read_so_that_it_never_stops_on_a_full_pipe() -> None:
    proc = launch.start([], env=dict(os.environ), cwd=ROOT, popen=_chatty)
    assert proc.wait(budget(10)) == 0  # without the reader it would block on its 65th kilobyte and never end


def test_the_lab_is_started_as_python_m_dagcheck_lab_serve_in_this_interpreter() -> None:
    assert launch.serve_command("--port", "5986") == [sys.executable, "-m", "dagcheck.lab", "serve", "--port", "5986"]
