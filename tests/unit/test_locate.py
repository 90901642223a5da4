"""Finding the inventory (issue 25): --inventory, $DAGCHECK_INVENTORY, ./dagcheck.yml,
~/.config/dagcheck/inventory.yml, /etc/dagcheck/inventory.yml, and only then the embedded lab, which every
run then names on its first line, in the verdict line and so in the mail subject ("simulated lab").

HOME and the working directory are temporary folders, so the real machine's files do not matter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dagcheck import locate, paths
from dagcheck.report import summary
from dagcheck.report.results import RunResults
from tests.conftest import lab_data

BIN = Path(sys.executable).with_name("dagcheck")


@pytest.fixture
def places(tmp_path, monkeypatch):
    cwd, home, system = tmp_path / "cwd", tmp_path / "home", tmp_path / "etc" / "inventory.yml"
    cwd.mkdir()
    home.mkdir()
    monkeypatch.setattr(locate, "SYSTEM", system)
    return cwd, home, system


def _write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("sites: []\n", encoding="utf-8")
    return path


def test_each_place_is_taken_in_order_and_the_lab_only_last(places) -> None:
    cwd, home, system = places
    env: dict[str, str] = {}

    def found() -> locate.Found:
        return locate.find(None, env, cwd, home)

    assert found().is_embedded_lab and found().path == paths.LAB_INVENTORY
    _write(system)
    assert found() == locate.Found(system, str(system))
    user = _write(home / ".config" / "dagcheck" / "inventory.yml")
    assert found() == locate.Found(user, "~/.config/dagcheck/inventory.yml")
    local = _write(cwd / "dagcheck.yml")
    assert found() == locate.Found(local, "./dagcheck.yml")
    env[locate.ENV] = "/somewhere/prod.yml"
    assert found() == locate.Found(Path("/somewhere/prod.yml"), "$DAGCHECK_INVENTORY")
    assert locate.find("given.yml", env, cwd, home) == locate.Found(Path("given.yml"), "--inventory")


def test_a_named_file_that_is_missing_is_an_error_not_the_lab(places) -> None:
    cwd, home, _ = places
    chosen = locate.find(None, {locate.ENV: str(cwd / "missing.yml")}, cwd, home)
    assert chosen.path == cwd / "missing.yml" and not chosen.is_embedded_lab


def test_the_verdict_and_so_the_mail_subject_say_simulated_lab() -> None:
    results = RunResults(
        {"started": "", "kind": "nightly"}, {"file": "lab.yml", "dags": {"DAG1": ["mbx1"]}, "simulated": True}, [], []
    )
    assert "simulated lab" in summary.verdict(results)[1]
    real = RunResults({"started": "", "kind": "nightly"}, {"file": "prod.yml", "dags": {"DAG1": ["mbx1"]}}, [], [])
    assert "simulated" not in summary.verdict(real)[1]


def _run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != locate.ENV}
    return subprocess.run(
        [str(BIN), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, "HOME": str(cwd), **env},
        timeout=300,
        check=False,
    )


needs_bin = pytest.mark.skipif(not BIN.exists(), reason="the dagcheck console script is not installed in this venv")


@needs_bin
@pytest.mark.skipif(locate.SYSTEM.exists(), reason=f"{locate.SYSTEM} exists on this machine: a run would use it")
def test_health_without_an_inventory_says_simulated_lab_first_and_in_the_summary(tmp_path) -> None:
    done = _run("health", "--reports-dir", "out", "-k", "copy_is_healthy", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    first = done.stdout.splitlines()[0]
    assert "simulated lab" in first and "no inventory found" in first
    [results] = (tmp_path / "out" / "history" / "adhoc").glob("*.json")
    assert json.loads(results.read_text(encoding="utf-8"))["inventory"]["simulated"] is True
    [page] = (tmp_path / "out").glob("summary-*.html")
    assert "simulated lab, not a real organisation" in page.read_text(encoding="utf-8")


@needs_bin
def test_dagcheck_inventory_and_dagcheck_yml_are_the_inventories_used(tmp_path) -> None:
    faulty = tmp_path / "faulty.yml"  # the lab with DB01's copy on mbx2 failed: only this file has the fault
    faulty.write_text(yaml.safe_dump(lab_data([{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}])), encoding="utf-8")
    done = _run("health", "--reports-dir", "out", "-k", "copy_is_healthy", cwd=tmp_path, DAGCHECK_INVENTORY=str(faulty))
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "DB01\\mbx2" in done.stdout and f"{faulty} is a simulated lab" in done.stdout.splitlines()[0]

    (tmp_path / "dagcheck.yml").write_text("sites: [\n", encoding="utf-8")  # ./dagcheck.yml wins over the lab
    broken = _run("health", "--reports-dir", "out", cwd=tmp_path)
    assert broken.returncode == 4 and "dagcheck.yml" in broken.stderr and "not valid YAML" in broken.stderr


try:  # the SMTP server fixture of the mail tests (aiosmtpd, a dev dependency)
    from tests.unit.report.test_mail import _email, smtp_server  # noqa: F401
except pytest.skip.Exception:  # pragma: no cover - without aiosmtpd
    smtp_server = None


@pytest.mark.skipif(smtp_server is None, reason="aiosmtpd is not installed")
def test_the_mail_subject_of_a_lab_run_says_simulated_lab(run_checks, smtp_server, monkeypatch) -> None:  # noqa: F811
    port, ca, inbox = smtp_server
    monkeypatch.setenv("DAGCHECK_SMTP_TEST_PW", "s3cret!")
    data = lab_data()
    data["report"] = {"email": {**_email(port, ca), "when": "always"}}
    assert run_checks(data, "-k", "copy_is_healthy").exit_code == 0
    [msg] = inbox.messages
    assert msg["Subject"].startswith("dagcheck: HEALTHY") and "simulated lab, not a real organisation" in msg["Subject"]
