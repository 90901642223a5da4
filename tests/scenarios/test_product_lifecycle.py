"""Product lifecycle (issue 12, item 4): the lifecycle and build tables, DAG-BUILD-004, the tables' age, the
--build-table/--lifecycle-table options, and an Exchange SE lab that can hold 2016 and 2019 servers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from dagcheck.cli import _parser, pytest_args
from dagcheck.inventory import parse_inventory
from dagcheck.lab import products
from dagcheck.lab.build import build_organization
from dagcheck.lab.inprocess import InProcessTransport
from dagcheck.remote.base import Command, Endpoint
from dagcheck.rules.builds import (
    LIFECYCLE_TABLE,
    TABLE,
    TableError,
    load_build_table,
    load_lifecycle_table,
    load_tables,
    name,
    stale,
    stale_tables,
    support,
)
from dagcheck.sources.components import parse_component_state
from dagcheck.sources.exchange_servers import parse_exchange_server
from dagcheck.sources.exsetup import FileVersion, parse_file_version
from dagcheck.sources.service_health import ServiceHealth, parse_service_health
from tests.conftest import lab_data

SE, E19, E16 = "15.2.2562.49", "15.2.1544.44", "15.1.2507.72"
ALL = [f"mbx{i}" for i in range(1, 5)]
TODAY = dt.date(2026, 12, 4)


def _lab(builds: dict[str, str] | None = None, default: str | None = None) -> dict:
    data = lab_data()
    if default:
        data["lab"]["build"] = default
    data["lab"]["builds"] = dict(builds or {})
    return data


def _copy(src: Path, dst: Path, replace: dict[str, str]) -> Path:
    text = src.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    dst.write_text(text, encoding="utf-8")
    return dst


# ---- the tables ---------------------------------------------------------------------------------


def test_tables_carry_their_as_of_date_and_know_the_current_releases() -> None:
    tables = load_tables()
    assert tables.builds.as_of == tables.lifecycle.as_of == dt.date(2026, 12, 4)
    assert name((15, 2, 2562, 49), tables) == "Exchange Server SE RTM Sep26SU (15.2.2562.49)"
    assert name((15, 2, 1544, 44), tables) == "Exchange 2019 CU14 Aug26SU (15.2.1544.44)"
    assert name((15, 2, 1258, 12), tables) == "Exchange 2019 CU13 (15.2.1258.12)"
    assert name((15, 1, 2507, 72), tables) == "Exchange 2016 CU23 Aug26SU (15.1.2507.72)"
    # Every CU of the build table has its lifecycle row under the same product name.
    known = {(r.product, r.cu) for r in tables.lifecycle.rows}
    assert {(c.product, c.cu) for c in tables.builds.cus} <= known


@pytest.mark.parametrize(
    "build, verdict",
    [
        ((15, 2, 2562, 49), None),
        ((15, 2, 2562, 17), None),  # supported product, an old SU (DAG-BUILD-003's business)
        ((15, 2, 2600, 5), None),  # a newer SE CU than the table knows: still SE
        (
            (15, 2, 1748, 49),
            "Exchange 2019 CU15 Aug26SU (15.2.1748.49) is out of support since 2025-10-14; "
            "Extended Security Updates ended 2026-10-31",
        ),
        ((15, 2, 1544, 44), "Exchange 2019 CU14 Aug26SU (15.2.1544.44) is out of support since 2025-10-14"),
        ((15, 2, 1258, 12), "this CU had no Extended Security Updates"),
        ((15, 2, 397, 3), "Exchange 2019, a CU not in the lifecycle table (15.2.397.3) is out of support"),
        ((15, 1, 2507, 72), "Exchange 2016 CU23 Aug26SU (15.1.2507.72) is out of support since 2025-10-14"),
        ((15, 0, 1497, 2), "Exchange 2013, a CU not in the lifecycle table (15.0.1497.2) is out of support since 2023-04-11"),
        ((14, 3, 123, 4), "knows no such product"),
    ],
)
def test_support_verdict_names_product_and_cu(build, verdict) -> None:
    got = support(build, TODAY)
    if verdict is None:
        assert got.problem is None
    else:
        assert got.problem is not None and verdict in got.problem
        assert got.move_to


def test_esu_wording_while_the_programme_ran() -> None:
    assert "only under the paid ESU programme, until 2026-10-31" in support((15, 2, 1748, 49), dt.date(2026, 6, 1)).problem


def test_move_to_says_in_place_for_2019_and_new_servers_for_2016() -> None:
    assert "in-place upgrade" in support((15, 2, 1544, 44), TODAY).move_to
    assert "no in-place upgrade from 2016" in support((15, 1, 2507, 72), TODAY).move_to


def test_stale_is_more_than_90_days() -> None:
    as_of = dt.date(2026, 9, 1)
    assert not stale(as_of, as_of + dt.timedelta(days=90))
    assert stale(as_of, as_of + dt.timedelta(days=91))
    lines = stale_tables(load_tables(), dt.date(2027, 3, 5))
    assert len(lines) == 2 and "--build-table" in lines[0] and "--lifecycle-table" in lines[1]
    assert "91 days old (as of 2026-12-04" in lines[0]


@pytest.mark.parametrize(
    "loader, src, replace, where",
    [
        (load_build_table, TABLE, {"15.2.1748.49": "15.2.17x8.49"}, "latest_su_build '15.2.17x8.49' is not a build"),
        (load_build_table, TABLE, {"2026-08-11\nExchange 2019,CU14": "2026-13-11\nExchange 2019,CU14"}, "not a date"),
        (load_build_table, TABLE, {"# as_of: 2026-12-04\n": ""}, "no '# as_of: YYYY-MM-DD' line"),
        (load_build_table, TABLE, {"15.2.1748.10,Aug26SU": "15.2.1748.10"}, "5 field(s), expected 6"),
        (load_build_table, TABLE, {"latest_su_date": "su_date"}, "header is"),
        (
            load_lifecycle_table,
            LIFECYCLE_TABLE,
            {"2025-10-14,2026-10-31,Exchange Server SE RTM (in-place upgrade from 2019 CU14)": "2025-10-14,2026-10-31,"},
            "move_to is empty",
        ),
    ],
)
def test_a_broken_table_names_file_and_line(tmp_path: Path, loader, src, replace, where) -> None:
    bad = _copy(src, tmp_path / "bad.csv", replace)
    with pytest.raises(TableError) as exc:
        loader(bad)
    assert where in str(exc.value)
    assert str(exc.value).startswith(f"{bad}:")
    if exc.value.line:  # the line number points at the offending line (as_of problems point at line 1)
        lines = bad.read_text(encoding="utf-8").splitlines()
        assert 1 <= exc.value.line <= len(lines)


def test_a_broken_row_reports_its_own_line_number(tmp_path: Path) -> None:
    bad = _copy(TABLE, tmp_path / "bad.csv", {"15.1.2507.72": "fifteen"})
    line = next(i for i, text in enumerate(bad.read_text(encoding="utf-8").splitlines(), 1) if "fifteen" in text)
    with pytest.raises(TableError, match=rf"bad.csv:{line}: latest_su_build 'fifteen'"):
        load_build_table(bad)


def test_a_table_is_read_again_when_its_file_changes(tmp_path: Path) -> None:
    path = _copy(TABLE, tmp_path / "t.csv", {})
    assert load_build_table(path).as_of == dt.date(2026, 12, 4)
    _copy(TABLE, path, {"# as_of: 2026-12-04": "# as_of: 2026-12-05 "})
    assert load_build_table(path).as_of == dt.date(2026, 12, 5)


# ---- the lab: Exchange SE by default, 2016 and 2019 on request -------------------------------------


def _transport(data: dict) -> InProcessTransport:
    return InProcessTransport(build_organization(parse_inventory(data)))


def _exsetup(t: InProcessTransport, server: str) -> FileVersion:
    objs = t.run(server, Endpoint.WINDOWS, Command.of("Get-Command", member="FileVersionInfo", Name="ExSetup.exe"))
    return parse_file_version(objs[0], server)


def test_the_default_lab_is_exchange_se_and_a_server_can_be_2016_or_2019() -> None:
    t = _transport(_lab({"mbx2": E19, "mbx3": E16}))
    expected = {
        "mbx1": ((15, 2, 2562, 49), (15, 2, 2562, 17)),
        "mbx2": ((15, 2, 1544, 44), (15, 2, 1544, 4)),
        "mbx3": ((15, 1, 2507, 72), (15, 1, 2507, 6)),
        "mbx4": ((15, 2, 2562, 49), (15, 2, 2562, 17)),
    }
    for server, (exsetup, adv) in expected.items():
        assert _exsetup(t, server).version == exsetup
        ex = parse_exchange_server(t.run(server, Endpoint.EXCHANGE, Command.of("Get-ExchangeServer", Identity=server))[0])
        assert ex.admin_display_version == adv, server


def test_2016_has_um_call_router_and_the_unified_messaging_role() -> None:
    t = _transport(_lab({"mbx3": E16}))

    def components(server: str) -> list[str]:
        objs = t.run(server, Endpoint.EXCHANGE, Command.of("Get-ServerComponentState", Identity=server))
        return [parse_component_state(o).component for o in objs]

    def roles(server: str) -> dict[str, ServiceHealth]:
        objs = t.run(server, Endpoint.EXCHANGE, Command.of("Test-ServiceHealth", Server=server))
        return {h.role: h for h in (parse_service_health(o, server) for o in objs)}

    assert "UMCallRouter" in components("mbx3") and "UMCallRouter" not in components("mbx1")
    assert list(roles("mbx3")) == [
        "Mailbox Server Role",
        "Client Access Server Role",
        "Unified Messaging Server Role",
        "Hub Transport Server Role",
    ]
    assert list(roles("mbx1")) == ["Mailbox Server Role", "Client Access Server Role", "Hub Transport Server Role"]
    assert all(h.required_services_running and not h.services_not_running for h in roles("mbx3").values())


def test_the_labs_builds_are_its_own() -> None:
    """The lab's default build and release list are lab data (products.py), not the checker's table."""
    assert products.DEFAULT_BUILD == (15, 2, 2562, 49)
    assert products.product_of((15, 1, 2507, 72)) == "Exchange Server 2016"
    assert products.product_of((15, 2, 1544, 44)) == "Exchange Server 2019"
    assert products.extended_protection_on((15, 1, 2507, 72)) and not products.extended_protection_on((15, 1, 2507, 6))


# ---- the catalogue against SE, one 2019 server, a mixed and a 2016 lab ---------------------------


def test_default_se_lab_is_all_green(run_checks) -> None:
    result = run_checks(lab_data())
    assert result.exit_code == 0 and not result.failed(), result.messages
    for server in ALL:
        assert result.outcomes[f"checks/test_builds.py::test_product_and_cu_supported[{server}]"] == "passed"
        assert result.outcomes[f"checks/test_builds.py::test_build_is_current[{server}]"] == "passed"


def test_an_exchange_2019_server_gives_exactly_one_critical_out_of_support_finding(run_checks) -> None:
    # All four run 2019 (a 2019 member among SE ones would also be the odd one out in build parity,
    # DAG-BUILD-002, a different invariant: the mixed lab below shows that case).
    result = run_checks(_lab(default=E19))
    assert result.short_failed() == {f"test_product_and_cu_supported[{s}]" for s in ALL}, result.messages
    assert result.exit_code == 1
    for s in ALL:
        message = result.messages[f"checks/test_builds.py::test_product_and_cu_supported[{s}]"]
        assert f"{s}: Exchange 2019 CU14 Aug26SU (15.2.1544.44) is out of support since 2025-10-14" in message
        assert "move to Exchange Server SE RTM (in-place upgrade from 2019 CU14)" in message
        # The SU-currency check does not fail for the same reason a second time.
        assert result.outcomes[f"checks/test_builds.py::test_build_is_current[{s}]"] == "skipped"


def test_mixed_lab_fails_lifecycle_and_build_parity_only(run_checks) -> None:
    result = run_checks(_lab({"mbx2": E19, "mbx3": E16}))
    # Lifecycle on the 2019 and 2016 members; parity on all four, since no build has a majority in a DAG of
    # two SE, one 2019 and one 2016 member; and the 2016 member's Windows Server 2016 differs from the others'
    # (DAG-OS-001): genuine findings, nothing else.
    assert result.short_failed() == (
        {
            "test_product_and_cu_supported[mbx2]",
            "test_product_and_cu_supported[mbx3]",
            "test_windows_version_same_across_dag[mbx3]",
        }
        | {f"test_build_same_across_dag[{s}]" for s in ALL}
    ), result.messages
    assert "Exchange 2016 CU23" in result.messages["checks/test_builds.py::test_product_and_cu_supported[mbx3]"]
    assert (
        "mbx2 runs Exchange 2019 CU14 Aug26SU (15.2.1544.44), unlike the DAG"
        in result.messages["checks/test_builds.py::test_build_same_across_dag[mbx2]"]
    )


def test_all_2016_lab_fails_lifecycle_only(run_checks) -> None:
    result = run_checks(_lab(default=E16))
    assert result.short_failed() == {f"test_product_and_cu_supported[{s}]" for s in ALL}, result.messages
    # The 2016 servers' own components and roles are judged and pass.
    assert result.outcomes["checks/test_components.py::test_component_is_active[mbx1:UMCallRouter]"] == "passed"
    um_role = "checks/test_health.py::test_required_services_running[mbx1:Unified Messaging Server Role]"
    assert result.outcomes[um_role] == "passed"


# ---- the tables' age and the options that replace them --------------------------------------------


def test_a_table_older_than_90_days_warns_in_terminal_and_report(run_checks, tmp_path: Path, capsys) -> None:
    old = _copy(TABLE, tmp_path / "old-builds.csv", {"# as_of: 2026-12-04": "# as_of: 2026-01-05"})
    result = run_checks(lab_data(), "--build-table", str(old), "-W", "default")
    out = capsys.readouterr().out
    assert result.exit_code == 0
    assert f"WARNING: the build table {old} is " in out and "(as of 2026-01-05, more than 90)" in out
    assert "StaleTableWarning" in out  # pytest's warnings summary
    html = (tmp_path / "reports" / "dagcheck.html").read_text(encoding="utf-8")
    assert "Stale table: the build table" in html
    assert "the lifecycle table" not in out  # the package's lifecycle table is fresh
    # the summary people read (and mail) and the results file say it too, under the verdict
    reports = tmp_path / "reports"
    summaries = list(reports.glob("summary*.html"))
    assert summaries and all("Stale table: the build table" in p.read_text(encoding="utf-8") for p in summaries)
    saved = [json.loads(p.read_text(encoding="utf-8")) for p in (reports / "history").rglob("*.json")]
    assert saved and all(any("the build table" in n and "days old" in n for n in r["run"]["notices"]) for r in saved)


def test_a_newer_build_table_is_used(run_checks, tmp_path: Path) -> None:
    # Test data: a later SU that has not been established. The lab (at Sep26SU) is now one SU behind.
    newer = _copy(
        TABLE,
        tmp_path / "newer.csv",
        {"Sep26SU,15.2.2562.49,2026-09-08": "Dec26SU,15.2.2562.55,2026-12-08", "# as_of: 2026-12-04": "# as_of: 2026-12-09"},
    )
    result = run_checks(lab_data(), "--build-table", str(newer))
    assert result.short_failed() == {f"test_build_is_current[{s}]" for s in ALL}
    assert "lacks Dec26SU (15.2.2562.55, 2026-12-08)" in result.messages["checks/test_builds.py::test_build_is_current[mbx1]"]
    assert result.exit_code == 0  # a warning-severity finding


def test_a_newer_lifecycle_table_is_used(run_checks, tmp_path: Path) -> None:
    # Test data: a future table in which SE RTM has been superseded. The lab's SE RTM is now out of support.
    newer = _copy(
        LIFECYCLE_TABLE,
        tmp_path / "newer.csv",
        {
            "Exchange Server SE,RTM,15.2.2562.17,2025-07-01,,,": (
                "Exchange Server SE,RTM,15.2.2562.17,2025-07-01,2026-11-01,,Exchange Server SE CU1"
            )
        },
    )
    result = run_checks(lab_data(), "--lifecycle-table", str(newer))
    assert result.short_failed() == {f"test_product_and_cu_supported[{s}]" for s in ALL}
    assert "move to Exchange Server SE CU1" in result.messages["checks/test_builds.py::test_product_and_cu_supported[mbx4]"]


@pytest.mark.parametrize("option", ["--build-table", "--lifecycle-table"])
def test_a_broken_table_file_is_a_usage_error_naming_file_and_line(run_checks, tmp_path: Path, capsys, option) -> None:
    src = TABLE if option == "--build-table" else LIFECYCLE_TABLE
    bad = _copy(src, tmp_path / "bad.csv", {"15.2.1544.4,": "15.2.x.4,"})
    line = next(i for i, text in enumerate(bad.read_text(encoding="utf-8").splitlines(), 1) if "15.2.x.4" in text)
    result = run_checks(lab_data(), option, str(bad))
    err = capsys.readouterr().err
    assert result.exit_code == 4 and not result.outcomes
    assert f"{option}: {bad}:{line}: cu_build '15.2.x.4' is not a build" in err
    assert "Traceback" not in err


def test_a_missing_table_file_is_a_usage_error(run_checks, tmp_path: Path, capsys) -> None:
    result = run_checks(lab_data(), "--build-table", str(tmp_path / "nope.csv"))
    assert result.exit_code == 4 and f"--build-table: {tmp_path / 'nope.csv'}:0: cannot read the file" in capsys.readouterr().err


def test_the_cli_passes_the_table_options_to_pytest() -> None:
    args, rest = _parser().parse_known_args(["health", "--build-table", "b.csv", "--lifecycle-table", "l.csv"])
    out = pytest_args(args, rest)
    at = out.index("--build-table")
    assert out[at : at + 4] == ["--build-table", "b.csv", "--lifecycle-table", "l.csv"]


# ---- independence: the lab does not borrow the checker's answers ---------------------------------


def test_a_wrong_expected_latest_build_fails_against_the_healthy_lab(run_checks, tmp_path: Path) -> None:
    """Patch the checker's table with a wrong latest SU for SE RTM (as if it said Sep26SU was .51): the lab,
    whose build is its own (products.DEFAULT_BUILD), does not follow, so the healthy lab fails."""
    wrong = _copy(TABLE, tmp_path / "wrong.csv", {"Sep26SU,15.2.2562.49": "Sep26SU,15.2.2562.51"})
    result = run_checks(lab_data(), "--build-table", str(wrong))
    assert result.short_failed() == {f"test_build_is_current[{s}]" for s in ALL}
    assert "lacks Sep26SU (15.2.2562.51" in result.messages["checks/test_builds.py::test_build_is_current[mbx2]"]


def test_a_wrong_end_of_support_fails_against_the_healthy_lab(run_checks, tmp_path: Path) -> None:
    """A lifecycle table that wrongly ends SE RTM's support turns the healthy SE lab red: DAG-BUILD-004 can fail."""
    wrong = _copy(
        LIFECYCLE_TABLE,
        tmp_path / "wrong.csv",
        {"Exchange Server SE,RTM,15.2.2562.17,2025-07-01,,,": "Exchange Server SE,RTM,15.2.2562.17,2025-07-01,2025-10-14,,X"},
    )
    result = run_checks(lab_data(), "--lifecycle-table", str(wrong))
    assert result.short_failed() == {f"test_product_and_cu_supported[{s}]" for s in ALL}
    assert result.exit_code == 1
