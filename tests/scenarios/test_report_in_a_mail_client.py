"""The first screen of the nightly report, with JavaScript disabled as in a mail client, shows the
verdict, the matrix and both failures (headless Chromium, when installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import lab_data

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium)")
FAULTS = [{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}, {"kind": "stuck_queue", "server": "mbx3", "count": 25}]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'chromium-profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _scripts_blocked(report: Path, tmp_path: Path) -> str:
    """A copy of the report whose scripts a Content-Security-Policy blocks, as in a mail client: headless
    Chromium ignores --disable-javascript (and dumps nothing with --blink-settings=scriptEnabled=false)."""
    blocked = tmp_path / f"blocked-{report.name}"
    blocked.write_text(
        report.read_text(encoding="utf-8").replace(
            "<head>", "<head><meta http-equiv='Content-Security-Policy' content=\"script-src 'none'\">", 1
        ),
        encoding="utf-8",
    )
    return blocked.as_uri()


def test_first_screen_shows_verdict_matrix_and_both_failures(run_checks, tmp_path) -> None:
    run_checks(lab_data(FAULTS))
    report = tmp_path / "reports" / "dagcheck.html"
    png = tmp_path / "first-screen.png"
    shot = _chromium(tmp_path, f"--screenshot={png}", "--window-size=1280,1000", _scripts_blocked(report, tmp_path))
    assert png.is_file() and png.stat().st_size > 10_000, shot.stderr[-2000:]
    colours = _distinct_colours(png)
    assert colours > 8, "the screenshot is blank"
    dom = _chromium(tmp_path, "--dump-dom", _scripts_blocked(report, tmp_path)).stdout
    head = dom.split("Failures by check", 1)
    assert "NOT HEALTHY" in head[0] and "DAG DAG1" in head[0] and "Extended Protection" in head[0]
    assert "DAG-COPY-001" in head[1] and "DB01\\mbx2" in head[1] and "DAG-QUEUE-001" in head[1]

    run_checks(lab_data(FAULTS[1:]))
    dom = _chromium(tmp_path, "--dump-dom", _scripts_blocked(report, tmp_path)).stdout
    resolved = dom.split("Resolved since the last run", 1)[1].split("</ul>", 1)[0]
    assert "DAG-COPY-001" in resolved and "DAG-QUEUE-001" not in resolved


def _distinct_colours(png: Path) -> int:
    from matplotlib import image

    pixels = image.imread(str(png))
    flat = (pixels[..., :3].reshape(-1, 3) * 255).astype(int)
    return len({tuple(p) for p in flat[:: max(1, len(flat) // 20000)]})
