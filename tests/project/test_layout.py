"""The tests' layout stays findable by path (issue 22): tests/unit mirrors dagcheck/, so the unit test of
dagcheck/<pkg>/<module>.py is tests/unit/<pkg>/test_<module>.py; the other folders (lab, scenarios, project)
are named by Exchange area, story or concern, and tests/ itself holds only the shared helpers.

Only one direction is checked: every unit test file names a module that exists. A module without a unit
test is allowed (many are tested through the lab or a scenario), so new modules need no placeholder.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT

TESTS = ROOT / "tests"
UNIT = TESTS / "unit"
PACKAGE = ROOT / "dagcheck"
NOT_TESTS = {"__init__.py", "conftest.py"}


def strays(unit: Path, package: Path) -> list[str]:
    """Files under `unit` that do not point at a module of `package`, each with what it should be."""
    found = []
    for path in sorted(unit.rglob("*.py")):
        if path.name in NOT_TESTS:
            continue
        relative = path.relative_to(unit)
        if not path.name.startswith("test_"):
            found.append(f"{relative}: only test_<module>.py files belong in tests/unit (helpers go in tests/)")
            continue
        module = relative.parent / path.name.removeprefix("test_")
        if not (package / module).is_file() and not (package / module.with_suffix("") / "__init__.py").is_file():
            found.append(f"{relative}: {package.name}/{module.as_posix()} does not exist (move the file with its module)")
    for folder in sorted(p for p in unit.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        if not (package / folder.relative_to(unit)).is_dir():
            found.append(f"{folder.relative_to(unit)}/: {package.name}/{folder.relative_to(unit).as_posix()}/ does not exist")
    return found


def test_every_unit_test_file_points_at_an_existing_module() -> None:
    assert strays(UNIT, PACKAGE) == []


def test_the_check_names_a_unit_test_whose_module_is_gone(tmp_path: Path) -> None:
    package, unit = tmp_path / "dagcheck", tmp_path / "unit"
    (package / "report").mkdir(parents=True)
    (package / "report" / "history.py").touch()
    (package / "plugin").mkdir()
    (package / "plugin" / "__init__.py").touch()
    (unit / "report").mkdir(parents=True)
    for name in ("__init__.py", "test_history.py", "test_mail.py", "helpers.py"):
        (unit / "report" / name).touch()
    (unit / "test_plugin.py").touch()
    (unit / "maintenance").mkdir()
    assert strays(unit, package) == [
        "report/helpers.py: only test_<module>.py files belong in tests/unit (helpers go in tests/)",
        "report/test_mail.py: dagcheck/report/mail.py does not exist (move the file with its module)",
        "maintenance/: dagcheck/maintenance/ does not exist",
    ]


def test_every_folder_of_tests_is_a_package() -> None:
    """Without __init__.py, two files of the same name in two folders collide under pytest's prepend mode."""
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file()) == []


def test_the_top_of_tests_holds_only_helpers() -> None:
    assert sorted(p.name for p in TESTS.glob("test_*.py")) == []


MAX_MODULE_LINES = 600  # issue 22: a module a newcomer can read whole; past it, split by concern


def oversized(package: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    """Modules of `package` longer than `limit` lines, each with its length."""
    lengths = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in sorted(package.rglob("*.py"))}
    return [f"{p.relative_to(package.parent)}: {n} lines" for p, n in lengths.items() if n > limit]


def test_no_module_of_dagcheck_is_over_600_lines() -> None:
    assert oversized(PACKAGE) == []


def test_oversized_names_a_long_module(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "short.py").write_text("x = 1\n" * 600, encoding="utf-8")
    (package / "long.py").write_text("x = 1\n" * 601, encoding="utf-8")
    assert oversized(package) == ["pkg/long.py: 601 lines"]
