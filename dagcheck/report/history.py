"""The history folder: nightly results kept for comparison and trends, ad-hoc runs kept apart.

reports/history/nightly/<stamp>.json  - the nightly health runs (compared, plotted, pruned)
reports/history/nightly/digests/<stamp>.json - what later runs read of each: its failing verdicts
reports/history/adhoc/<stamp>.json    - everything else (-k, --co, --server, --dag, a phase): never
                                         read as "the previous run", so they cannot pollute it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dagcheck.report.results import RunResults, read, write

DEFAULT_KEEP = 90


def folder(reports: Path, kind: str) -> Path:
    return reports / "history" / kind


def digest_path(path: Path) -> Path:
    """Where the digest of a results file lives: history/<kind>/digests/<stamp>.json (not itself a run)."""
    return path.parent / "digests" / path.name


def digest_of(results: RunResults) -> RunResults:
    """What later runs read of this one: its run and inventory entries and its failing verdicts (the
    comparison with the previous run and the trend read nothing else). At 300 servers a results file is
    some 33 MB of mostly passes; reading 30 of them whole for the trend would take minutes and gigabytes."""
    return RunResults(results.run, results.inventory, results.failing(), results.schema_version)


def write_digest(results: RunResults, path: Path) -> Path:
    """Write the digest of the results file at `path` (written atomically, like the results file)."""
    return write(digest_of(results), digest_path(path))


# What a damaged kept file can raise when read: unreadable (a directory in its place, no permission), over
# the size cap (FileTooLarge is a ValueError), not JSON or not dagcheck's shape (ValueError from results.read).
UNREADABLE = (OSError, ValueError)


def digest(path: Path) -> RunResults:
    """A nightly run as later runs read it (its digest). A results file kept from before digests existed,
    or whose digest is damaged, is read whole once (within results.MAX_READ_BYTES) and given one. Raises
    OSError or ValueError when neither can be read."""
    try:
        return read(digest_path(path))
    except UNREADABLE:
        pass
    made = digest_of(read(path))
    try:
        write_digest(made, path)  # a digest's own digest is itself
    except OSError:
        pass  # a read-only history still reports; the next run tries again
    return made


def nightly_digests(reports: Path, scope: str, damaged: list[str] | None = None) -> list[tuple[Path, RunResults]]:
    """The nightly runs of this scope (same inventory servers), oldest first: each results file with its
    digest, read once for the scope, the comparison and the trend alike. A kept file that cannot be read is
    skipped, never fatal (the report and the mail must still go out): `damaged` receives one line naming it."""
    out = []
    for path in sorted(folder(reports, "nightly").glob("*.json")):
        try:
            made = digest(path)
        except UNREADABLE as exc:
            if damaged is not None:
                damaged.append(f"{path}: {_why(exc)}")
            continue
        if same_scope(made.run.get("scope"), scope):
            out.append((path, made))
    return out


def _why(exc: Exception) -> str:
    if isinstance(exc, IsADirectoryError):
        return "a directory, not a results file"
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or exc})"
    return str(exc)


def previous(reports: Path, scope: str, exclude: Path | None = None, damaged: list[str] | None = None) -> RunResults | None:
    """The digest of the latest nightly run of this scope before this one (its failing verdicts); a damaged
    kept file is skipped and named in `damaged`."""
    runs = [made for path, made in nightly_digests(reports, scope, damaged) if path != exclude]
    return runs[-1] if runs else None


def prune(reports: Path, keep: int) -> list[Path]:
    """Delete the oldest nightly results beyond `keep` (all scopes counted together), with their digests."""
    runs = sorted(folder(reports, "nightly").glob("*.json"))
    doomed = runs[:-keep] if keep > 0 else []
    for path in doomed:
        for kept in (path, digest_path(path)):
            try:
                kept.unlink(missing_ok=True)
            except OSError:
                pass  # a directory or a protected file in its place: left for its owner, never fatal
    return doomed


# ---- which runs compare: the organisation's identity, not where its inventory file lies --------------


def scope_of(servers: Iterable[str]) -> str:
    """A nightly run's scope: the servers it checked (case-insensitive). The organisation is its servers,
    so a moved, renamed or copied inventory keeps its history; a server added or removed starts a new one."""
    return "servers:" + ",".join(sorted({s.lower() for s in servers}))


def _servers(scope: object) -> frozenset[str] | None:
    """The servers of a scope, in this form or the earlier `<inventory path>|<servers>`."""
    if not isinstance(scope, str):
        return None
    names = scope[len("servers:") :] if scope.startswith("servers:") else scope.rpartition("|")[2]
    return frozenset(n.lower() for n in names.split(",") if n)


def same_scope(recorded: object, scope: str) -> bool:
    """Whether a recorded run checked the same organisation (results written before scope_of compare too)."""
    found = _servers(recorded)
    return found is not None and found == _servers(scope)


def why_none(reports: Path, scope: str) -> str:
    """Why a nightly run has no previous run to compare with: none kept, or the latest checked other servers."""
    latest: RunResults | None = None
    for path in reversed(sorted(folder(reports, "nightly").glob("*.json"))):
        try:
            latest = digest(path)
            break
        except UNREADABLE:
            continue
    if latest is None:
        return "no previous nightly run to compare with"
    before, now = _servers(latest.run.get("scope")) or frozenset(), _servers(scope) or frozenset()
    changed = [
        f"{label} {', '.join(sorted(names))}" for label, names in (("added", now - before), ("removed", before - now)) if names
    ]
    return (
        f"nothing to compare with: the last nightly run ({latest.run.get('started', '')}) checked other servers "
        f"({'; '.join(changed)}), so this run starts a new history"
    )
