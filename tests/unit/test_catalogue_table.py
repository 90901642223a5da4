"""The catalogue is complete and README.md lists it as the code defines it."""

from __future__ import annotations

from dagcheck.catalogue_table import BEGIN, END, load_checks, markdown_table
from tests.conftest import ROOT


def test_readme_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index(BEGIN) + len(BEGIN) : readme.index(END)].strip()
    assert table == markdown_table(), "README.md is stale: paste `python -m dagcheck.catalogue_table` between the markers"


def test_every_check_has_metadata_and_a_phase() -> None:
    checks = load_checks()
    assert len(checks) >= 35
    for c in checks:
        assert c.id and c.title and c.rationale and c.remediation and c.phases, c.id
        assert c.severity in ("critical", "warning")
