"""The recorded Exchange data is found in one way, and a test that needs it and cannot find it skips
naming the missing folder (tests/shared_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

from tests import shared_fixtures


def test_a_missing_folder_is_named_in_the_skip_reason(tmp_path: Path) -> None:
    missing = tmp_path / "shared" / "fixtures" / "css-exchange" / "E19"
    mark = shared_fixtures.needs(missing)
    assert mark.name == "skipif" and mark.args == (True,)
    assert str(missing) in mark.kwargs["reason"]
    assert shared_fixtures.ENV in mark.kwargs["reason"]


def test_a_present_folder_does_not_skip(tmp_path: Path) -> None:
    present = tmp_path / "css-exchange" / "E19"
    present.mkdir(parents=True)
    assert shared_fixtures.missing_reason(present) is None
    assert shared_fixtures.needs(present).args == (False,)


def test_the_environment_variable_names_the_folder(tmp_path: Path) -> None:
    chosen = tmp_path / "elsewhere"
    assert shared_fixtures.folder({shared_fixtures.ENV: str(chosen)}, tmp_path / "repo") == chosen


def test_the_folder_beside_a_worktrees_parent_is_found(tmp_path: Path) -> None:
    """A worktree at <top>/wt/<name> finds <top>/shared/fixtures, as the main checkout at <top>/main does."""
    (tmp_path / "shared" / "fixtures").mkdir(parents=True)
    assert shared_fixtures.folder({}, tmp_path / "main") == tmp_path / "shared" / "fixtures"
    assert shared_fixtures.folder({}, tmp_path / "wt" / "name") == tmp_path / "shared" / "fixtures"


def test_without_any_the_documented_place_is_named(tmp_path: Path) -> None:
    repository = tmp_path / "wt" / "name"
    assert shared_fixtures.folder({}, repository) == tmp_path / "wt" / "shared" / "fixtures"
