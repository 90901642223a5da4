"""Protocol figures over loopback against the lab (a benchmark that prints, not a timed test).

    python benchmarks/transport.py [--calls 50]

Prints: time to open a runspace pool, median round trip of one Get- cmdlet, and round trips per
second with one pool and with 8 pools in parallel.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dagcheck.inventory import load_inventory  # noqa: E402
from dagcheck.lab.build import build_organization  # noqa: E402
from dagcheck.lab.server import LabServer  # noqa: E402


def open_pool(lab: LabServer, server: str) -> RunspacePool:
    wsman = WSMan(
        "127.0.0.1",
        port=lab.port(server),
        path="PowerShell",
        ssl=False,
        auth="basic",
        username=lab.credentials.username,
        password=lab.credentials.password,
        encryption="never",
    )
    pool = RunspacePool(wsman, configuration_name="Microsoft.Exchange")
    pool.open()
    return pool


def call(pool: RunspacePool, server: str) -> None:
    ps = PowerShell(pool)
    ps.add_cmdlet("Get-MailboxServer").add_parameter("Identity", server)
    ps.invoke()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    inventory = load_inventory(Path(__file__).resolve().parent.parent / "inventory" / "lab.yml")
    with LabServer(build_organization(inventory)) as lab:
        opens = []
        for _ in range(5):
            t = time.perf_counter()
            pool = open_pool(lab, "mbx1")
            opens.append(time.perf_counter() - t)
            pool.close()
        pool = open_pool(lab, "mbx1")
        trips = []
        for _ in range(args.calls):
            t = time.perf_counter()
            call(pool, "mbx1")
            trips.append(time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(args.calls):
            call(pool, "mbx1")
        one_pool_rate = args.calls / (time.perf_counter() - t)
        pool.close()
        servers = [s.name for s in inventory.servers]
        pools = [open_pool(lab, servers[i % len(servers)]) for i in range(8)]

        def worker(i: int) -> None:
            for _ in range(args.calls):
                call(pools[i], servers[i % len(servers)])

        t = time.perf_counter()
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(worker, range(8)))
        eight_rate = 8 * args.calls / (time.perf_counter() - t)
        for p in pools:
            p.close()
    print(f"open runspace pool (median of 5):     {statistics.median(opens) * 1000:7.1f} ms")
    print(f"Get-MailboxServer round trip (median): {statistics.median(trips) * 1000:7.1f} ms")
    print(f"round trips/s, 1 pool:                 {one_pool_rate:7.1f}")
    print(f"round trips/s, 8 pools in parallel:    {eight_rate:7.1f}")


if __name__ == "__main__":
    main()
