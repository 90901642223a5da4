"""The history folder: nightly results kept for comparison and trends, ad-hoc runs kept apart.

reports/history/nightly/<stamp>.json  - the nightly health runs (compared, plotted, pruned)
reports/history/adhoc/<stamp>.json    - everything else (-k, --co, --server, --dag, a phase): never
                                         read as "the previous run", so they cannot pollute it.
"""

from __future__ import annotations

import json
from pathlib import Path

from dagcheck.report.results import RunResults, read

DEFAULT_KEEP = 90


def folder(reports: Path, kind: str) -> Path:
    return reports / "history" / kind


def nightly_runs(reports: Path, scope: str) -> list[Path]:
    """The nightly results files of this scope (same inventory servers), oldest first."""
    out = []
    for path in sorted(folder(reports, "nightly").glob("*.json")):
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("run", {}).get("scope") == scope:
                out.append(path)
        except (OSError, ValueError):
            continue  # an unreadable file is skipped, not fatal: the report must still be written
    return out


def previous(reports: Path, scope: str, exclude: Path | None = None) -> RunResults | None:
    runs = [p for p in nightly_runs(reports, scope) if p != exclude]
    for path in reversed(runs):
        try:
            return read(path)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def prune(reports: Path, keep: int) -> list[Path]:
    """Delete the oldest nightly results beyond `keep` (all scopes counted together)."""
    runs = sorted(folder(reports, "nightly").glob("*.json"))
    doomed = runs[:-keep] if keep > 0 else []
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
