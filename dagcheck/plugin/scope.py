"""Which run this is, asked by several modules of the pytest face: does it run dagcheck's checks
(or only the project's own tests), which phases, and is it the nightly run or an ad hoc one.

Pure questions about the command line; nothing here reads the inventory or connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagcheck.maintenance.controller import run_phases as phases_of
from dagcheck.options import ROOT


def runs_checks(config: pytest.Config) -> bool:
    """True when the run collects checks/ (or the repository root), not only the project's tests."""
    args = [a for a in config.args if not a.startswith("-")] or [str(config.rootpath)]
    return any("checks" in Path(a).parts or Path(a).resolve() == ROOT for a in args)


def run_phases(config: pytest.Config) -> list[str]:
    """The phases whose checks this run executes, in order."""
    return phases_of(config.getoption("--phase"), config.getoption("--cycle"))


def run_kind(config: pytest.Config) -> str:
    """nightly only for the whole live health run over the whole inventory; anything narrower is ad hoc,
    and so is a replay of saved data (yesterday's data must not enter tonight's history)."""
    whole = all(Path(a.split("::")[0]).resolve() in (ROOT, ROOT / "checks") for a in config.args if not a.startswith("-"))
    narrowed = (
        config.getoption("keyword")
        or config.getoption("markexpr")
        or config.getoption("collectonly")
        or config.getoption("--server")
        or config.getoption("--dag")
        or config.getoption("--cycle")
        or config.getoption("--phase") != "health"
        or config.getoption("lf", False)
        or not whole
        or config.getoption("--replay", None)
    )
    return "adhoc" if narrowed else "nightly"
