"""dagcheck's own time per member of a rolling patch, against a persistent lab (prints figures; not a timed test).

    python benchmarks/rolling_overhead.py [--reboot-seconds 1] [--keep DIR]

Serves a lab one SU behind (`python -m dagcheck.lab serve --state ...`), runs `dagcheck rolling DAG1 --apply`
to the next SU with the lab's own patch command, then splits each member's wall time, from the rolling
journal, the children's files and the transition journals, into:

- patch command: the patch command's own run (its wrapper's pid file to its exit-code file);
- reboot wait: the rest of the patch step (the member restarting and its services starting);
- Exchange: what Exchange (here the lab) was asked and waited for: the steps of the enter and exit
  transitions (their commands and waits, per the server's journal), the snapshot collections of the
  pytest runs ("collected in X s"), and the rolling run's own reads (target gate, build check);
- pytest start-up: each phase run's time outside its pytest session (the interpreter, imports, the plugin);
- dagcheck's own: the rest (the checks, the reports, the rolling run between its steps).

The lab answers at loopback speed (no latency profile), so its Exchange share is a floor; the split is what
matters: the last two columns are dagcheck's overhead per member.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dagcheck.lab import launch  # noqa: E402

OLD, TARGET = "15.2.2562.46", "15.2.2562.49"  # Exchange SE RTM Aug26SU to Sep26SU, as tests/scenarios/test_rolling_patch.py


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reboot-seconds", type=float, default=1.0, help="the lab's reboot after each patch")
    parser.add_argument("--keep", metavar="DIR", help="keep the lab, journals and reports here")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dagcheck-rolling-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGCHECK_LAB_USERNAME": "lab\\dagcheck", "DAGCHECK_LAB_PASSWORD": "bench-only"}
    lab = _serve(folder, env)
    try:
        started = time.monotonic()
        patch = f"{sys.executable} -m dagcheck.lab patch --state {folder / 'lab.json'} --reboot-seconds {args.reboot_seconds:g}"
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "dagcheck.cli",
                "rolling",
                "DAG1",
                "--inventory",
                str(folder / "inventory.yml"),
                "--reports-dir",
                str(folder / "reports"),
                "--apply",
                "--target-build",
                TARGET,
                "--patch-command",
                patch,
                "--patch-poll",
                "0.2",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - started
    finally:
        lab.terminate()
        lab.wait(60)
    if run.returncode != 0:
        sys.exit(f"the rolling run failed (exit {run.returncode}):\n{run.stdout[-3000:]}{run.stderr[-2000:]}")
    rows = split(folder / "reports")
    print(f"rolling patch of DAG1 (4 members), wall {wall:.1f} s, load {os.getloadavg()[0]:.2f} (1 min) at the end")
    head = ("member", "wall", "patch cmd", "reboot wait", "Exchange", "pytest start", "dagcheck own")
    print("  ".join(f"{h:>12}" for h in head))
    for member, row in rows.items():
        print("  ".join([f"{member:>12}"] + [f"{row[k]:>11.1f}s" for k in head[1:]]))
    n = len(rows)
    print("  ".join([f"{'mean':>12}"] + [f"{sum(r[k] for r in rows.values()) / n:>11.1f}s" for k in head[1:]]))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


def _serve(folder: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    source = yaml.safe_load((ROOT / "inventory/lab.yml").read_text(encoding="utf-8"))
    source["lab"]["build"] = OLD
    (folder / "lab-source.yml").write_text(yaml.safe_dump(source), encoding="utf-8")
    options = ["--inventory", str(folder / "lab-source.yml"), "--state", str(folder / "lab.json")]
    options += ["--write-inventory", str(folder / "inventory.yml")]
    try:
        return launch.start(options, env=env, cwd=ROOT)
    except launch.LabDidNotStart as exc:
        sys.exit(str(exc))


def _entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _child_seconds(base: Path) -> float:
    """The child's own run: its wrapper writes <base>.pid as it starts and <base>.rc as the command ends."""
    return os.stat(f"{base}.rc").st_mtime - os.stat(f"{base}.pid").st_mtime


def _pytest_times(base: Path) -> tuple[float, float]:
    """(seconds collecting snapshots, seconds of the pytest session) printed by one phase run."""
    log = Path(f"{base}.log").read_text(encoding="utf-8", errors="replace")
    collected = sum(float(x) for x in re.findall(r"collected in ([\d.]+) s", log))
    session = re.findall(r" in ([\d.]+)s(?: \(|\s*=*$)", log, flags=re.MULTILINE)
    return collected, float(session[-1]) if session else 0.0


def split(reports: Path) -> dict[str, dict[str, float]]:
    journal = _entries(reports / "rolling-dag1.jsonl")
    since = next(e["time"] for e in journal if e["event"] == "rolling_started")
    rows: dict[str, dict[str, float]] = {}
    for member in dict.fromkeys(e["member"] for e in journal if e["event"] == "member_step"):
        steps = {e["step"]: float(e["seconds"]) for e in journal if e["event"] == "member_step" and e["member"] == member}
        children = {e["step"]: Path(e["base"]) for e in journal if e["event"] == "child_started" and e["member"] == member}
        patch_cmd = _child_seconds(children["patch"]) if "patch" in children else 0.0
        transitions = sum(
            float(e.get("seconds", 0))
            for e in _entries(reports / f"journal-{member}.jsonl")
            if e.get("event") == "step" and e.get("outcome") == "done" and e.get("time", "") >= since
        )
        collected = started_up = 0.0
        for step in ("gate_and_enter", "exit_and_verify"):
            if step in children:
                c, session = _pytest_times(children[step])
                collected += c
                started_up += max(0.0, _child_seconds(children[step]) - session)
        wall = sum(steps.values())
        exchange = transitions + collected + steps.get("target_gate", 0.0) + steps.get("verify_build", 0.0)
        reboot = steps.get("patch", 0.0) - patch_cmd
        rows[member] = {
            "wall": wall,
            "patch cmd": patch_cmd,
            "reboot wait": reboot,
            "Exchange": exchange,
            "pytest start": started_up,
            "dagcheck own": wall - patch_cmd - reboot - exchange - started_up,
        }
    return rows


if __name__ == "__main__":
    print(f"# {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}, {os.cpu_count()} cores")
    main()
