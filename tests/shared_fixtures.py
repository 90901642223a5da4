"""Where the recorded Exchange data lives: real Export-Clixml captures and applicationHost.config files
(CSS-Exchange's HealthChecker test data), kept beside the repository in ../shared/fixtures, not in it.

One place names that folder, so that a test needing it skips with the path of the folder that is
missing (never silently, never with an error) and a checkout elsewhere can point at it once:
$DAGCHECK_SHARED_FIXTURES, else the nearest shared/fixtures beside the repository or beside the folder
holding it (a git worktree such as ../wt/<name>), else ../shared/fixtures, the documented place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

ENV = "DAGCHECK_SHARED_FIXTURES"
REPOSITORY = Path(__file__).resolve().parent.parent


def folder(environ: Mapping[str, str] = os.environ, repository: Path = REPOSITORY) -> Path:
    """The shared fixtures folder: the one $DAGCHECK_SHARED_FIXTURES names, else the first that exists."""
    if environ.get(ENV):
        return Path(environ[ENV])
    beside = [repository.parent / "shared" / "fixtures", repository.parent.parent / "shared" / "fixtures"]
    return next((path for path in beside if path.is_dir()), beside[0])


def css_exchange(*parts: str) -> Path:
    """A folder of CSS-Exchange's recorded data, e.g. css_exchange("E19") or css_exchange("ExtendedProtection")."""
    return folder().joinpath("css-exchange", *parts)


def missing_reason(path: Path) -> str | None:
    """Why a test that reads `path` cannot run, naming the folder; None when the folder is there."""
    if path.is_dir():
        return None
    return (
        f"{path} is missing: the recorded Exchange data is not in the repository; put ../shared/fixtures "
        f"beside it or set {ENV} to the fixtures folder"
    )


def needs(path: Path) -> pytest.MarkDecorator:
    """Skip the test (or, as pytestmark, the module) when `path` is not a folder, saying which one."""
    reason = missing_reason(path)
    return pytest.mark.skipif(reason is not None, reason=reason or f"{path} is there")
