"""The `dagcheck` command: one-screen help, each subcommand's own options, pytest from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dagcheck import cli

BIN = Path(sys.executable).with_name("dagcheck")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False)


pytestmark = pytest.mark.skipif(not BIN.exists(), reason="the dagcheck console script is not installed in this venv")


def test_help_fits_one_screen_and_subcommand_help_is_its_own(tmp_path) -> None:
    top = _run("--help", cwd=tmp_path)
    assert top.returncode == 0 and len(top.stdout.splitlines()) < 25 and "gate SERVER" in top.stdout
    gate = _run("gate", "--help", cwd=tmp_path).stdout
    assert gate.startswith("usage: dagcheck gate") and "--target" in gate and "--apply" not in gate
    assert "--apply" in _run("enter", "--help", cwd=tmp_path).stdout
    rolling = _run("rolling", "DAG1", "--reports-dir", "out", cwd=tmp_path)
    assert rolling.returncode == 0 and rolling.stdout.startswith("Dry run (nothing changes")
    assert "--patch-command" in _run("rolling", "--help", cwd=tmp_path).stdout


def test_health_runs_the_checks_from_any_directory_and_passes_pytest_options(tmp_path) -> None:
    done = _run("health", "--reports-dir", "out", "-k", "copy_is_healthy", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "passed" in done.stdout and "deselected" in done.stdout
    [results] = list((tmp_path / "out" / "history" / "adhoc").glob("*.json"))  # -k: an ad-hoc run
    data = json.loads(results.read_text(encoding="utf-8"))
    assert {c["id"] for c in data["checks"]} == {"DAG-COPY-001"}

    rendered = _run("report", str(results), "-o", "again.html", cwd=tmp_path)
    assert rendered.returncode == 0 and "HEALTHY" in rendered.stdout
    assert "DAG DAG1" in (tmp_path / "again.html").read_text(encoding="utf-8")


def test_gate_stands_for_the_preflight_phase_of_one_server() -> None:
    args, rest = cli._parser().parse_known_args(["gate", "mbx1", "--target", "mbx2", "-x"])
    line = cli.pytest_args(args, rest)
    assert line[:1] == [str(cli.ROOT / "checks")]
    assert ["--phase", "preflight", "--server", "mbx1", "--target", "mbx2", "-x"] == line[-7:]


def test_a_wheel_install_runs_the_checks_without_a_checkout(tmp_path) -> None:
    """A non-editable install carries checks/, conftest.py, the inventory schema and the lab inventory
    as data files (share/dagcheck); `dagcheck health` from an empty directory finds and runs them."""
    import site
    import sysconfig

    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(cli.ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if build.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip()[-300:]}")
    [wheel] = wheels.glob("dagcheck-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True, check=True
    ).stdout.strip()
    # The dependencies come from this venv (appended after the new venv's own site-packages, so
    # the wheel's dagcheck is the one imported and the one whose files are listed).
    deps = [*site.getsitepackages(), sysconfig.get_path("purelib")]
    Path(purelib, "deps.pth").write_text("\n".join(deps) + "\n")
    # --ignore-installed: without it pip uninstalls the running venv's own (editable) dagcheck first
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", "--prefix", str(venv), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (venv / "share" / "dagcheck" / "checks" / "test_components.py").is_file()
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    where = subprocess.run(
        [str(python), "-c", "import dagcheck.paths as p; print(p.ROOT, p.INSTALLED)"],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        check=True,
    ).stdout.split()
    assert where == [str((venv / "share" / "dagcheck").resolve()), "True"]
    run = subprocess.run(
        [str(python), "-m", "dagcheck.cli", "health", "-k", "component"],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "PytestAssertRewriteWarning" not in run.stdout
    assert list((work / "reports").glob("summary-adhoc-health-*.html")), "reports go to ./reports where it runs"


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "a.json", "b.json"],
        ["doctor", "--inventory", "x.yml", "stray"],
        ["discover", "--from", "ex01", "--output", "o.yml", "--bogus"],
    ],
)
def test_a_command_that_does_not_hand_over_to_pytest_refuses_what_it_would_ignore(argv, capsys, tmp_path, monkeypatch) -> None:
    """`dagcheck report a.json b.json` rendered a.json alone and exited 0: the second file was dropped
    without a word. Nothing is read or written before the refusal."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"dagcheck {argv[0]}: unrecognized arguments: {argv[-1]}" in err
    assert list(tmp_path.iterdir()) == []
