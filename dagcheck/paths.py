"""Where dagcheck's checks, inventory schema and default lab inventory are.

In a checkout (and the editable install, which points at it) they sit beside the package:
checks/, conftest.py, inventory/, pyproject.toml. A wheel installs the same files as data under
`<prefix>/share/dagcheck` (pyproject's [tool.setuptools.data-files]); the installed distribution's
file list says where that prefix is, whatever the scheme (venv, --user, system).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
MARKER = "share/dagcheck/conftest.py"


def _installed_data() -> Path | None:
    try:
        files = metadata.distribution("dagcheck").files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.as_posix().endswith(MARKER):
            return Path(str(file.locate())).resolve().parent
    return None


def _root() -> tuple[Path, bool]:
    if (CHECKOUT / "checks").is_dir() and (CHECKOUT / "inventory").is_dir():
        return CHECKOUT, False
    installed = _installed_data()
    return (installed, True) if installed is not None else (CHECKOUT, False)


ROOT, INSTALLED = _root()
CHECKS = ROOT / "checks"
INVENTORY_SCHEMA = ROOT / "inventory" / "dagcheck.schema.json"
LAB_SCHEMA = ROOT / "inventory" / "lab.schema.json"  # the lab's own section (dagcheck.lab.settings)
LAB_INVENTORY = ROOT / "inventory" / "lab.yml"
# Reports go to the checkout's reports/; an installed copy writes them where it is run.
DEFAULT_REPORTS = ROOT / "reports" if not INSTALLED else Path("reports")
