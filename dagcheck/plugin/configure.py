"""The run's set-up: dagcheck's options (from a bare checkout), the inventory found, loaded and
validated against the other options before anything connects, the markers, which phases' checks run
and where the HTML and JUnit reports go; and the first line that says a run is on a simulated lab.

A bad option or inventory is a pytest.UsageError naming the option or file: before the lab starts or a
single request goes out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from dagcheck import locate, safety
from dagcheck.errors import InventoryError
from dagcheck.files import private_dir
from dagcheck.inventory import Inventory, load_inventory
from dagcheck.maintenance.planned import with_rolling_windows
from dagcheck.options import add_options
from dagcheck.plugin.keys import INVENTORY_KEY, LOCATED_KEY, PHASE_MARKERS
from dagcheck.plugin.scope import run_phases, runs_checks
from dagcheck.remote.replay import ReplayError
from dagcheck.remote.replay import check_folder as check_replay_folder


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # Installed, dagcheck registers its options through the "dagcheck" pytest11 entry point, early
    # enough that `--inventory /elsewhere/prod.yml` is not mistaken for a test path; from a bare
    # checkout (no install) this plugin adds them itself.
    if not pluginmanager.has_plugin("dagcheck"):
        add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    locate_inventory(config)
    # --rolling drives whole pytest runs per member (dagcheck/maintenance/rolling.py), so it replaces this one.
    if config.getoption("--rolling", None):
        from dagcheck.maintenance.rolling import main_from_config

        return main_from_config(config)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: the report paths must be set before pytest-html and junitxml read them.
    for phase, text in PHASE_MARKERS.items():
        config.addinivalue_line("markers", f"{phase}: {text}")
    if config.inipath is None:
        # Each check's id, severity, expected, actual and remediation go into JUnit as <property>
        # elements, which only the legacy (xunit1) family carries. Set here too, because pytest finds no
        # ini file when an --inventory path outside the repository decides its root directory.
        config._inicache["junit_family"] = "legacy"  # type: ignore[attr-defined]
    locate_inventory(config)
    inventory = _load(config)
    config.stash[INVENTORY_KEY] = inventory
    _validate(config, inventory)
    if runs_checks(config):
        if not config.getoption("markexpr"):
            config.option.markexpr = " or ".join(run_phases(config))
        _report_paths(config)


def _load(config: pytest.Config) -> Inventory:
    try:
        inventory = load_inventory(config.getoption("--inventory"))
        # A rolling run in progress on this host is a patch window of its DAG (issue 10).
        return with_rolling_windows(inventory, config.getoption("--reports-dir"))
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from None


def _validate(config: pytest.Config, inventory: Inventory) -> None:
    """Every name an option gives is in the inventory, and the options make sense together."""
    for name in config.getoption("--server") or []:
        _known(inventory, "--server", name, inventory.server)
    needs_one = config.getoption("--phase") == "maintenance" or config.getoption("--cycle")
    if needs_one and len(config.getoption("--server") or []) != 1:
        raise pytest.UsageError("--phase maintenance and --cycle act on one server: name it with --server")
    if config.getoption("--target"):
        _known(inventory, "--target", config.getoption("--target"), inventory.server)
    if config.getoption("--replay"):
        _validate_replay(config)
    if config.getoption("--dag"):
        _known(inventory, "--dag", config.getoption("--dag"), inventory.dag)
    if (misuse := safety.misuse(config, inventory)) is not None:
        raise pytest.UsageError(misuse)  # before the lab starts or a single request goes out


def _known(inventory: Inventory, option: str, name: str, find: Callable[[str], object]) -> None:
    try:
        find(name)
    except KeyError:
        raise pytest.UsageError(f"{option} {name}: not in {inventory.file}") from None


def _validate_replay(config: pytest.Config) -> None:
    if config.getoption("--save"):
        raise pytest.UsageError("--replay reads saved data and --save writes it: use one of them")
    if config.getoption("--apply") or config.getoption("--cycle") or config.getoption("--phase") == "maintenance":
        raise pytest.UsageError(
            "--replay analyses saved data offline: it cannot perform or verify a transition "
            "(no --apply, --cycle or --phase maintenance)"
        )
    try:
        check_replay_folder(config.getoption("--replay"))
    except ReplayError as exc:
        raise pytest.UsageError(str(exc)) from None


def _report_paths(config: pytest.Config) -> None:
    """The HTML and JUnit reports' paths, unless given (an ad hoc health run's are set by dagcheck.plugin.reporting)."""
    reports = Path(config.getoption("--reports-dir"))
    private_dir(reports)  # owner-only when dagcheck creates it (dagcheck.files)
    stem = report_stem(
        "cycle" if config.getoption("--cycle") else config.getoption("--phase"), config.getoption("--server") or []
    )
    if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
        config.option.htmlpath = str(reports / f"{stem}.html")
        config.option.self_contained_html = True
    if not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(reports / ("junit.xml" if stem == "dagcheck" else f"{stem}.xml"))


def locate_inventory(config: pytest.Config) -> None:
    """Without --inventory, the first inventory of dagcheck.locate's order; the embedded lab only when there is
    none (remembered, so that the run says so on its first line)."""
    if LOCATED_KEY in config.stash:
        return
    found = locate.find(config.getoption("--inventory"))
    config.stash[LOCATED_KEY] = found
    config.option.inventory = str(found.path)


def report_stem(phase: str, servers: list[str]) -> str:
    """reports/dagcheck.html for the nightly health run; one file per phase, server and time otherwise,
    so that a pre-flight and a post-maintenance report can be kept side by side."""
    if phase == "health" and not servers:
        return "dagcheck"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{phase}-{'-'.join(s.lower() for s in servers) or 'all'}-{stamp}"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """A run on a simulated lab says so on its first line, before pytest's own header."""
    config = session.config
    inventory = config.stash.get(INVENTORY_KEY, None)
    found = config.stash.get(LOCATED_KEY, None)
    if inventory is None or inventory.lab is None or not runs_checks(config):
        return
    line = (
        locate.lab_notice(found)
        if found is not None and found.is_embedded_lab
        else f"dagcheck: {inventory.file} is a {locate.SIMULATED}, not a real organisation"
    )
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line, yellow=True, bold=True)
