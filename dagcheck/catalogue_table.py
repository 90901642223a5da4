"""Render the check catalogue as the Markdown table README.md carries (python -m dagcheck.catalogue_table).

The checks register themselves when their modules are imported, so this imports every checks/test_*.py
the way pytest would, then lists them by id. tests/unit/test_catalogue_table.py keeps README.md in step.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dagcheck import paths
from dagcheck.catalogue import CATALOGUE, CheckSpec
from dagcheck.collect import describe

CHECKS_DIR = paths.CHECKS
BEGIN, END = "<!-- catalogue:begin -->", "<!-- catalogue:end -->"


def load_checks(directory: Path = CHECKS_DIR) -> list[CheckSpec]:
    for path in sorted(directory.glob("test_*.py")):
        name = f"_dagcheck_catalogue_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return sorted(CATALOGUE.values(), key=lambda c: c.id)


def markdown_table() -> str:
    rows = ["| Id | Check | Phases | Severity | Read from |", "|---|---|---|---|---|"]
    for c in load_checks():
        source = "; ".join(f"`{line}`" for line in describe(c.source, "<server>"))
        rows.append(f"| {c.id} | {c.title} (`{c.function}`) | {', '.join(c.phases)} | {c.severity} | {source} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
