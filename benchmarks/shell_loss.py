"""What a lost shell costs dagcheck, over loopback against the lab (prints figures; not a timed test).

    python benchmarks/shell_loss.py [--rounds 20]

Prints the median time of one read through dagcheck's transport on a warm pool, of the same read
right after the PowerShell application pool recycled (the lost-shell fault, a new pool, the read
again), and of the first read that opens the pool; and how many shells the lab still holds at the end.
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
from dagcheck.remote.base import Command, Endpoint  # noqa: E402
from dagcheck.remote.credentials import Credentials  # noqa: E402
from dagcheck.remote.psrp import PsrpTransport  # noqa: E402

READ = Command.of("Get-MailboxServer", Identity="mbx1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    inventory = load_inventory(Path(__file__).resolve().parent.parent / "inventory" / "lab.yml")
    with LabServer(build_organization(inventory)) as lab:
        s = inventory.server("mbx1")
        server = dataclasses.replace(
            s, connection=lab_connection(s.connection, lab.exchange_uri("mbx1"), lab.windows_uri("mbx1"))
        )
        creds = {"mbx1": Credentials(lab.credentials.username, lab.credentials.password)}
        first, warm, after_recycle = [], [], []
        for _ in range(args.rounds):
            transport = PsrpTransport({"mbx1": server}, credentials=creds)
            first.append(_timed(transport))
            warm.append(_timed(transport))
            lab.recycle_app_pool("mbx1")
            after_recycle.append(_timed(transport))
            transport.close()
        print(f"first read (opens the pool):      {statistics.median(first) * 1000:7.1f} ms")
        print(f"read on a warm pool:              {statistics.median(warm) * 1000:7.1f} ms")
        print(
            f"read after an app-pool recycle:   {statistics.median(after_recycle) * 1000:7.1f} ms "
            "(the fault, a new pool, the read again)"
        )
        print(f"shells left on the lab:           {len(lab.open_shells())}")


def _timed(transport: PsrpTransport) -> float:
    start = time.perf_counter()
    transport.run("mbx1", Endpoint.EXCHANGE, READ)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
