"""Which inventory a run uses when the command line names none.

A first real run must never check the simulated lab by mistake: the places an administrator puts an
inventory are looked at first, in this order, and only when none exists does dagcheck fall back to
the embedded lab (and then says so on the run's first line, in the verdict and in the mail subject).

    1. --inventory PATH
    2. $DAGCHECK_INVENTORY
    3. ./dagcheck.yml
    4. ~/.config/dagcheck/inventory.yml
    5. /etc/dagcheck/inventory.yml
    6. the embedded lab (inventory/lab.yml)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagcheck import paths

ENV = "DAGCHECK_INVENTORY"
SYSTEM = Path("/etc/dagcheck/inventory.yml")
SIMULATED = "simulated lab"
ORDER_TEXT = (
    f"--inventory, else ${ENV}, else ./dagcheck.yml, else ~/.config/dagcheck/inventory.yml, "
    "else /etc/dagcheck/inventory.yml, else the embedded simulated lab"
)


@dataclass(frozen=True)
class Found:
    """The inventory chosen and why (for the run's first line and error messages)."""

    path: Path
    why: str  # "--inventory", "$DAGCHECK_INVENTORY", "./dagcheck.yml", ..., or "no inventory found"

    @property
    def is_embedded_lab(self) -> bool:
        return self.why == "no inventory found"


def candidates(cwd: Path, home: Path) -> list[tuple[Path, str]]:
    """The files looked for, in order, after --inventory and the environment variable."""
    return [
        (cwd / "dagcheck.yml", "./dagcheck.yml"),
        (home / ".config" / "dagcheck" / "inventory.yml", "~/.config/dagcheck/inventory.yml"),
        (SYSTEM, str(SYSTEM)),
    ]


def find(
    explicit: str | None, environ: Mapping[str, str] | None = None, cwd: Path | None = None, home: Path | None = None
) -> Found:
    """The inventory to use. An explicit path or $DAGCHECK_INVENTORY is taken as given (a missing file is
    then the loader's clear error, never a silent fall-back to the lab)."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Found(Path(explicit), "--inventory")
    if environ.get(ENV):
        return Found(Path(environ[ENV]), f"${ENV}")
    home = home if home is not None else Path(environ.get("HOME") or Path.home())
    for path, why in candidates(cwd or Path.cwd(), home):
        if path.is_file():
            return Found(path, why)
    return Found(paths.LAB_INVENTORY, "no inventory found")


def lab_notice(found: Found) -> str:
    """The first line of a run on the embedded lab."""
    return f"dagcheck: no inventory found ({ORDER_TEXT}): checking the {SIMULATED} ({found.path}), not a real organisation"
