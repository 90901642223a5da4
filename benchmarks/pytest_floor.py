"""What pytest itself costs per test item on this machine, with the plugins dagcheck's run loads (a benchmark
that prints figures, not a test).

The fleet benchmark's client CPU per server is mostly per item: at 267 checks per server, every 0.1 ms of
pytest's own work per item is 27 ms per server. This script runs N trivial items (a parametrized function
whose body is one comparison, fixtures shaped like dagcheck's: a parameter, two function-scoped fixtures
reading it and a session-scoped one) in a fresh pytest process, and prints the CPU each phase takes:
building the items, running them, and the end of the run (JUnit XML, pytest-html). It is the floor under
dagcheck's own per-check cost: what no change inside dagcheck's checks, fixtures or hooks can go below while
each object is a pytest item.

    python benchmarks/pytest_floor.py [--n 10680] [--plain] [--capture fd|sys|no] [--no-logging]

`--plain` runs without JUnit XML and pytest-html.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

CONFTEST = textwrap.dedent(
    """
    import os, time, json
    import pytest

    N = int(os.environ["FLOOR_N"])


    class Target:
        __slots__ = ("server", "label")

        def __init__(self, i):
            self.server = f"ex{i // 267:03d}"
            self.label = f"{self.server}-obj{i}"


    def pytest_generate_tests(metafunc):
        if "target" in metafunc.fixturenames:
            targets = [Target(i) for i in range(N)]
            metafunc.parametrize("target", targets, ids=[t.label for t in targets])


    @pytest.fixture(scope="session")
    def expect():
        return {"max": 6}


    @pytest.fixture
    def transition(pytestconfig, target):
        return target.server


    @pytest.fixture
    def item(pytestconfig, target, transition):
        return len(target.label)


    MARKS = {}


    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(session):
        MARKS["items_built"] = time.process_time()


    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(session):
        MARKS["checks_run"] = time.process_time()


    def pytest_unconfigure(config):
        MARKS["end"] = time.process_time()
        with open(os.environ["FLOOR_OUT"], "w") as f:
            json.dump(MARKS, f)
    """
)

CHECK = textwrap.dedent(
    """
    def test_object_is_healthy(item, expect):
        assert item < 1000
    """
)


def run(n: int, plain: bool, capture: str, logging: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "conftest.py").write_text(CONFTEST, encoding="utf-8")
        (work / "test_floor.py").write_text(CHECK, encoding="utf-8")
        out = work / "marks.json"
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--capture={capture}", str(work)]
        args += ["--rootdir", str(work), "-c", os.devnull]
        if not plain:
            args += ["--junitxml", str(work / "junit.xml"), "--html", str(work / "report.html")]
        if not logging:
            args += ["-p", "no:logging"]
        env = {**os.environ, "FLOOR_N": str(n), "FLOOR_OUT": str(out)}
        began = time.perf_counter()
        done = subprocess.run(args, env=env, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - began
        if done.returncode:
            raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
        marks = json.loads(out.read_text(encoding="utf-8"))
        return {"wall": wall, **marks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--n", type=int, default=10_680, help="items (default 10680: the fleet's N=40)")
    parser.add_argument("--plain", action="store_true", help="without JUnit XML and pytest-html")
    parser.add_argument("--capture", default="fd", choices=("fd", "sys", "no"))
    parser.add_argument("--no-logging", action="store_true", help="without pytest's logging plugin")
    args = parser.parse_args(argv)
    r = run(args.n, args.plain, args.capture, not args.no_logging)
    build, checks, end = r["items_built"], r["checks_run"] - r["items_built"], r["end"] - r["checks_run"]
    per = 1000 / args.n
    print(
        f"items={args.n} plugins={'plain' if args.plain else 'junit+html'} capture={args.capture} "
        f"logging={'off' if args.no_logging else 'on'} wall={r['wall']:.1f}s "
        f"cpu: to first item {build:.1f}s ({build * per:.2f} ms/item), running {checks:.1f}s ({checks * per:.2f} ms/item), "
        f"end {end:.1f}s ({end * per:.2f} ms/item)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
