"""The garbage-collector settings of a check run (dagcheck.plugin.gc_tuning, issue 27): raised while the answers
come in, the run's heap frozen once the items are built, and the interpreter's own settings back after the
run (the project's tests run pytest many times in one process)."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from dagcheck.plugin import gc_tuning


def _config() -> SimpleNamespace:
    return SimpleNamespace(stash=pytest.Stash())


@pytest.fixture
def interpreter_gc():
    """The interpreter's gc settings, restored whatever the test does."""
    saved = gc.get_threshold()
    yield saved
    gc.unfreeze()
    gc.set_threshold(*saved)


def test_a_check_run_raises_the_threshold_freezes_after_collection_and_restores(monkeypatch, interpreter_gc) -> None:
    monkeypatch.setattr(gc_tuning, "runs_checks", lambda config: True)
    gc.set_threshold(700, 10, 10)
    config = _config()
    gc_tuning.pytest_configure(config)
    assert gc.get_threshold() == (gc_tuning.THRESHOLD0, 10, 10)
    assert gc.get_freeze_count() == 0
    gc_tuning.pytest_collection_finish(SimpleNamespace(config=config))
    assert gc.get_freeze_count() > 0  # what the run built is no longer walked by later collections
    gc_tuning.pytest_unconfigure(config)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_other_pytest_runs_keep_the_interpreters_settings(monkeypatch, interpreter_gc) -> None:
    monkeypatch.setattr(gc_tuning, "runs_checks", lambda config: False)
    gc.set_threshold(700, 10, 10)
    config = _config()
    gc_tuning.pytest_configure(config)
    gc_tuning.pytest_collection_finish(SimpleNamespace(config=config))
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0
    gc_tuning.pytest_unconfigure(config)
    assert gc.get_threshold() == (700, 10, 10)


def test_the_checks_load_the_gc_settings() -> None:
    import dagcheck.plugin

    root = Path(gc_tuning.__file__).resolve().parents[2]
    assert "dagcheck.plugin" in runpy.run_path(str(root / "conftest.py"))["pytest_plugins"]
    assert "dagcheck.plugin.gc_tuning" in dagcheck.plugin.pytest_plugins
