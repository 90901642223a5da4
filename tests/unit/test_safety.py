"""The collection progress line: every server by name for a DAG, a summary line for a fleet."""

from __future__ import annotations

from types import SimpleNamespace

from dagcheck.safety import CollectionProgress


def _progress(calls: dict[str, int], blind: dict[str, str] | None = None) -> CollectionProgress:
    progress = CollectionProgress(lambda line: None, interval=3600)
    for server, n in calls.items():
        for _ in range(n):
            progress.call(SimpleNamespace(server=server))
    for server, kind in (blind or {}).items():
        progress.blind(SimpleNamespace(server=server, kind=kind, reason=f"{server} said no"))
    return progress


def test_a_dag_is_listed_server_by_server() -> None:
    line = _progress({"mbx1": 3, "mbx2": 1}, {"mbx3": "unreachable"}).line("collecting (5 s)")
    assert line == "collecting (5 s): mbx1 3 call(s), mbx2 1 call(s), mbx3 unreachable"


def test_a_fleet_is_one_short_line_with_totals_laggards_and_blind_servers() -> None:
    calls = {f"ex{i:03d}": 30 for i in range(300)}
    calls["ex150"], calls["ex007"] = 2, 9
    blind = {f"ex{i:03d}": "unreachable" for i in range(290, 298)}
    line = _progress(calls, blind).line("collecting (40 s)")
    assert line.startswith(f"collecting (40 s): 300 servers, {sum(calls.values()):,} call(s); ")
    assert (
        "8 not checkable: ex290 (unreachable), ex291 (unreachable), ex292 (unreachable), ex293 (unreachable), "
        "ex294 (unreachable) and 3 more" in line
    )
    assert "; fewest so far: ex150 2, ex007 9, ex000 30, " in line
    assert len(line) < 400


def test_a_fleet_where_every_server_is_level_names_no_laggard() -> None:
    line = _progress({f"ex{i:02d}": 4 for i in range(40)}).line("collected in 9.0 s")
    assert line == "collected in 9.0 s: 40 servers, 160 call(s)"
