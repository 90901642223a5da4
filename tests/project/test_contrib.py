"""The scheduling examples: the systemd units pass `systemd-analyze verify` (with the install path
pointed at this venv's dagcheck, since /opt/dagcheck does not exist here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path) -> None:
    dagcheck = Path(sys.executable).with_name("dagcheck")
    for name in ("dagcheck-nightly.service", "dagcheck-nightly.timer"):
        text = (CONTRIB / "systemd" / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("/opt/dagcheck/.venv/bin/dagcheck", str(dagcheck)), encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "dagcheck-nightly.service"), str(tmp_path / "dagcheck-nightly.timer")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "dagcheck-nightly" not in done.stderr, done.stderr


def test_cron_and_windows_examples_run_the_installed_command() -> None:
    assert "/opt/dagcheck/.venv/bin/dagcheck health" in (CONTRIB / "cron" / "dagcheck").read_text(encoding="utf-8")
    assert "dagcheck.exe' health" in (CONTRIB / "windows" / "Register-DagcheckNightly.ps1").read_text(encoding="utf-8")
