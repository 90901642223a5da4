"""What reading Extended Protection from IIS costs (prints figures; not a timed test).

    python benchmarks/iis.py [--rounds 20]

Prints the median time to parse and judge the real applicationHost.config files in
../shared/fixtures/css-exchange/ExtendedProtection (about 175 KB each: every location of both sites),
and the median time of one `type applicationHost.config` over WinRS against the lab through
dagcheck's transport (the lab's generated file, its size printed beside it).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dagcheck.inventory import load_inventory  # noqa: E402
from dagcheck.lab.build import build_organization  # noqa: E402
from dagcheck.lab.embedded import lab_connection  # noqa: E402
from dagcheck.lab.server import LabServer  # noqa: E402
from dagcheck.remote.base import CmdResult  # noqa: E402
from dagcheck.remote.credentials import Credentials  # noqa: E402
from dagcheck.remote.psrp import PsrpTransport  # noqa: E402
from dagcheck.rules.extended_protection import judge_location  # noqa: E402
from dagcheck.sources.iis_config import (
    COMMAND_LINE,  # noqa: E402
    read_iis,  # noqa: E402
)

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "fixtures" / "css-exchange" / "ExtendedProtection"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    for path in sorted(REAL.glob("*_ApplicationHost.config")):
        text = path.read_text(encoding="utf-8")
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for loc in read_iis(CmdResult(0, text, ""), "ex1"):
                judge_location(loc, (15, 2, 1544, 44), {})
            times.append(time.perf_counter() - start)
        print(f"parse + judge {path.name:42} {len(text) / 1024:6.0f} KB {statistics.median(times) * 1000:7.1f} ms")
    inventory = load_inventory(ROOT / "inventory" / "lab.yml")
    with LabServer(build_organization(inventory)) as lab:
        s = inventory.server("mbx1")
        server = dataclasses.replace(
            s, connection=lab_connection(s.connection, lab.exchange_uri("mbx1"), lab.windows_uri("mbx1"))
        )
        transport = PsrpTransport(
            {"mbx1": server}, credentials={"mbx1": Credentials(lab.credentials.username, lab.credentials.password)}
        )
        size, times = 0, []
        for _ in range(args.rounds):
            start = time.perf_counter()
            size = len(transport.run_cmd("mbx1", COMMAND_LINE).stdout)
            times.append(time.perf_counter() - start)
        transport.close()
        print(
            f"type applicationHost.config over WinRS (lab, {size / 1024:.0f} KB): first {times[0] * 1000:.1f} ms, "
            f"median {statistics.median(times) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
