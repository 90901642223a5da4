"""Inventories of a whole estate for the lab: N servers in DAGs of up to 16 members, two sites.

benchmarks/fleet.py runs the nightly health over them, and tests use small ones to count what a
fleet-wide run asks of each server and each DAG. Like the rest of the lab this knows nothing of
dagcheck's rules: it only lays out servers, DAGs and database copies.
"""

from __future__ import annotations

from typing import Any

# Exchange's own limit is 16 members per DAG.
MAX_DAG_SIZE = 16
AUTODISCOVER = "https://autodiscover.contoso.test/Autodiscover/Autodiscover.xml"
# The profile of issue 14: a remote PowerShell runspace opens in seconds, a Get- cmdlet takes a
# fraction of one, the Test- cmdlets several seconds.
REALISTIC_LATENCY = {"runspace_open": 2.0, "cmdlet": 0.3, "test_cmdlet": 3.0, "winrs": 0.3, "jitter": 0.1}


def fleet_inventory(
    servers: int, dag_size: int = MAX_DAG_SIZE, latency: dict[str, float] | None = None, copies: int = 3
) -> dict[str, Any]:
    """An inventory (as parsed YAML) of `servers` lab servers in ceil(servers / dag_size) DAGs.

    Members alternate between two sites; each member holds the active copy of one database, whose
    passive copies sit on the next members of its DAG (`copies` in all, fewer in a small DAG)."""
    if servers < 1 or not 1 <= dag_size <= MAX_DAG_SIZE:
        raise ValueError(f"need at least one server and a DAG size of 1..{MAX_DAG_SIZE}")
    sizes = [min(dag_size, servers - start) for start in range(0, servers, dag_size)]
    server_rows: list[dict[str, Any]] = []
    dags: list[dict[str, Any]] = []
    databases: list[dict[str, Any]] = []
    for d, size in enumerate(sizes, start=1):
        dag = f"DAG{d:02d}"
        members = [f"ex{d:02d}m{i:02d}" for i in range(1, size + 1)]
        for i, name in enumerate(members):
            server_rows.append(
                {"name": name, "fqdn": f"{name}.lab.contoso.test", "site": "Site-A" if i % 2 == 0 else "Site-B", "dag": dag}
            )
        dags.append(
            {"name": dag, "members": members, "witness": {"server": f"fsw{d:02d}.lab.contoso.test", "directory": f"C:\\{dag}"}}
        )
        for i in range(size):
            holders = [members[(i + k) % size] for k in range(min(copies, size))]
            databases.append({"name": f"{dag}-DB{i + 1:02d}", "copies": holders})
    data: dict[str, Any] = {
        "sites": [{"name": "Site-A"}, {"name": "Site-B"}],
        "servers": server_rows,
        "dags": dags,
        "expectations": {
            "copy_queue_max": 6,
            "replay_queue_max": 49,
            "transport_queue_max": 0,
            "content_index_allowed": ["Healthy", "NotApplicable", "AutoSuspended"],
            "activation_policy": "Unrestricted",
            "build": "same-across-dag",
            "host": {"volumes": ["C:", "D:", "E:"], "min_free_gb": 10, "min_free_percent": 10},
            "autodiscover": {site: {"uri": AUTODISCOVER, "site_scope": [site]} for site in ("Site-A", "Site-B")},
        },
        "maintenance": {"poll_interval": 0, "wait_timeout": 600, "no_progress_polls": 8, "force_allowed": []},
        # Exchange Server SE RTM with its latest SU in the lab (dagcheck/lab/products.py): a supported build, so a
        # fleet run is all green unless a fault says otherwise
        "lab": {"build": "15.2.2562.49", "databases": databases, "faults": []},
    }
    if latency:
        data["lab"]["latency"] = dict(latency)
    return data
