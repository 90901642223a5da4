"""Build arithmetic and product lifecycle: AdminDisplayVersion vs ExSetup.exe, parity across a DAG, currency
against the table of CUs and their latest SUs (dagcheck/data/exchange_builds.csv), and support against the
lifecycle table (dagcheck/data/exchange_lifecycle.csv).

Both tables go stale by design (every month brings an SU), so each carries its own "as of" date on a
`# as_of: YYYY-MM-DD` line; the run warns when one is old, and an administrator can point a run at newer
files (--build-table, --lifecycle-table) without editing the package. A malformed file is a TableError
naming file and line, which the plugin turns into a usage error.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

Build = tuple[int, int, int, int]
DATA = Path(__file__).resolve().parent.parent / "data"
TABLE = DATA / "exchange_builds.csv"
LIFECYCLE_TABLE = DATA / "exchange_lifecycle.csv"
STALE_AFTER_DAYS = 90

BUILD_COLUMNS = ("product", "cu", "cu_build", "latest_su", "latest_su_build", "latest_su_date")
LIFECYCLE_COLUMNS = ("product", "cu", "cu_build", "release_date", "end_of_support", "esu_end", "move_to")
_AS_OF = re.compile(r"#\s*as_of:\s*(\S+)\s*$")


class TableError(ValueError):
    """A build or lifecycle table that cannot be read: says which file, which line and what is wrong."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path, self.line, self.problem = path, line, problem


def parse_build(text: str) -> Build:
    a, b, c, d = (int(p) for p in text.strip().split("."))
    return a, b, c, d


def show(build: Build) -> str:
    return ".".join(map(str, build))


@dataclass(frozen=True)
class SupportedCU:
    """One row of the build table: a CU and the latest SU it received."""

    product: str
    cu: str
    cu_build: Build
    latest_su: str
    latest_su_build: Build
    latest_su_date: str


@dataclass(frozen=True)
class LifecycleRow:
    """One row of the lifecycle table; cu "*" covers the product's CUs that have no row of their own."""

    product: str
    cu: str
    cu_build: Build
    release_date: dt.date
    end_of_support: dt.date | None
    esu_end: dt.date | None
    move_to: str


@dataclass(frozen=True)
class BuildTable:
    path: Path
    as_of: dt.date
    cus: tuple[SupportedCU, ...]


@dataclass(frozen=True)
class LifecycleTable:
    path: Path
    as_of: dt.date
    rows: tuple[LifecycleRow, ...]


@dataclass(frozen=True)
class Tables:
    """The two tables a run judges builds by."""

    builds: BuildTable
    lifecycle: LifecycleTable


# ---- reading the tables ---------------------------------------------------------------------------


def _rows(path: Path, columns: tuple[str, ...]) -> tuple[dt.date, list[tuple[int, dict[str, str]]]]:
    """The as_of date and the data rows with their line numbers; TableError on anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TableError(path, 0, f"cannot read the file ({exc.__class__.__name__}: {exc})") from None
    as_of: dt.date | None = None
    data: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            if (m := _AS_OF.match(line)) is not None:
                as_of = _date(path, number, "as_of", m.group(1))
            continue
        if line.strip():
            data.append((number, line))
    if as_of is None:
        raise TableError(path, 1, "no '# as_of: YYYY-MM-DD' line: the table must say when it was last checked")
    if not data:
        raise TableError(path, 1, f"no header row (expected: {','.join(columns)})")
    header_line, header = data[0]
    found = tuple(h.strip() for h in next(csv.reader([header])))
    if found != columns:
        raise TableError(path, header_line, f"header is {','.join(found)} (expected: {','.join(columns)})")
    out = []
    for number, line in data[1:]:
        values = next(csv.reader([line]))
        if len(values) != len(columns):
            raise TableError(path, number, f"{len(values)} field(s), expected {len(columns)} ({','.join(columns)})")
        out.append((number, dict(zip(columns, (v.strip() for v in values), strict=True))))
    if not out:
        raise TableError(path, header_line, "the table has no rows")
    return as_of, out


def _date(path: Path, line: int, column: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise TableError(path, line, f"{column} {value!r} is not a date (YYYY-MM-DD)") from None


def _build(path: Path, line: int, column: str, value: str) -> Build:
    try:
        return parse_build(value)
    except ValueError:
        raise TableError(path, line, f"{column} {value!r} is not a build (15.2.1748.10)") from None


def _text(path: Path, line: int, column: str, value: str) -> str:
    if not value:
        raise TableError(path, line, f"{column} is empty")
    return value


def load_build_table(path: Path = TABLE) -> BuildTable:
    """The build table at path (read again whenever the file changes)."""
    return _load_builds(path, *_stamp(path))


def load_lifecycle_table(path: Path = LIFECYCLE_TABLE) -> LifecycleTable:
    """The lifecycle table at path (read again whenever the file changes)."""
    return _load_lifecycle(path, *_stamp(path))


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return -1, -1  # _rows reports the file as unreadable
    return st.st_mtime_ns, st.st_size


@cache
def _load_builds(path: Path, _mtime: int, _size: int) -> BuildTable:
    as_of, rows = _rows(path, BUILD_COLUMNS)
    cus = []
    for n, r in rows:
        cu_build = _build(path, n, "cu_build", r["cu_build"])
        su_build = _build(path, n, "latest_su_build", r["latest_su_build"])
        if su_build[:3] != cu_build[:3] or su_build < cu_build:
            raise TableError(path, n, f"latest_su_build {r['latest_su_build']} is not an SU of cu_build {r['cu_build']}")
        _date(path, n, "latest_su_date", r["latest_su_date"])
        cus.append(
            SupportedCU(
                _text(path, n, "product", r["product"]),
                _text(path, n, "cu", r["cu"]),
                cu_build,
                _text(path, n, "latest_su", r["latest_su"]),
                su_build,
                r["latest_su_date"],
            )
        )
    return BuildTable(path, as_of, tuple(cus))


@cache
def _load_lifecycle(path: Path, _mtime: int, _size: int) -> LifecycleTable:
    as_of, rows = _rows(path, LIFECYCLE_COLUMNS)
    out = []
    for n, r in rows:
        eos = _date(path, n, "end_of_support", r["end_of_support"]) if r["end_of_support"] else None
        esu = _date(path, n, "esu_end", r["esu_end"]) if r["esu_end"] else None
        if eos is not None and not r["move_to"]:
            raise TableError(path, n, "move_to is empty: an out-of-support row must say what to move to")
        out.append(
            LifecycleRow(
                _text(path, n, "product", r["product"]),
                _text(path, n, "cu", r["cu"]),
                _build(path, n, "cu_build", r["cu_build"]),
                _date(path, n, "release_date", r["release_date"]),
                eos,
                esu,
                r["move_to"],
            )
        )
    return LifecycleTable(path, as_of, tuple(out))


def load_tables(build_table: Path | None = None, lifecycle_table: Path | None = None) -> Tables:
    """The tables a run uses: the package's, or the files an administrator named (TableError if bad)."""
    return Tables(
        load_build_table(Path(build_table) if build_table else TABLE),
        load_lifecycle_table(Path(lifecycle_table) if lifecycle_table else LIFECYCLE_TABLE),
    )


def default_tables() -> Tables:
    return load_tables()


def supported_cus(path: Path = TABLE) -> tuple[SupportedCU, ...]:
    return load_build_table(path).cus


def stale(as_of: dt.date, today: dt.date, max_age_days: int = STALE_AFTER_DAYS) -> bool:
    """A table checked more than max_age_days ago no longer knows the latest SUs (one ships most months)."""
    return (today - as_of).days > max_age_days


def stale_tables(tables: Tables, today: dt.date) -> list[str]:
    """One line per table older than STALE_AFTER_DAYS, saying how to refresh it."""
    out = []
    for name, option, table in (("build", "--build-table", tables.builds), ("lifecycle", "--lifecycle-table", tables.lifecycle)):
        if stale(table.as_of, today):
            out.append(
                f"the {name} table {table.path} is {(today - table.as_of).days} days old (as of {table.as_of}, "
                f"more than {STALE_AFTER_DAYS}): its verdicts may miss newer releases; update it or point "
                f"{option} at a newer file"
            )
    return out


# ---- judging a build ------------------------------------------------------------------------------


def cu_of(build: Build, tables: Tables | None = None) -> SupportedCU | None:
    """The build table's CU a build belongs to (same major.minor.build), or None."""
    cus = (tables or default_tables()).builds.cus
    return next((c for c in cus if c.cu_build[:3] == build[:3]), None)


def lifecycle_of(build: Build, tables: Tables | None = None) -> LifecycleRow | None:
    """The lifecycle row of a build: its CU's own row, else the "*" row of the product it falls in (the
    product whose first build is the highest at or below it, same major.minor); None outside every product."""
    rows = (tables or default_tables()).lifecycle.rows
    own = next((r for r in rows if r.cu != "*" and r.cu_build[:3] == build[:3]), None)
    if own is not None:
        return own
    candidates = [r for r in rows if r.cu == "*" and r.cu_build[:2] == build[:2] and r.cu_build[:3] <= build[:3]]
    return max(candidates, key=lambda r: r.cu_build, default=None)


def name(build: Build, tables: Tables | None = None) -> str:
    """The build in an administrator's words: "Exchange 2019 CU14 Aug26SU (15.2.1544.44)"."""
    tables = tables or default_tables()
    cu = cu_of(build, tables)
    if cu is not None:
        su = f" {cu.latest_su}" if build == cu.latest_su_build else ""
        return f"{cu.product} {cu.cu}{su} ({show(build)})"
    row = lifecycle_of(build, tables)
    if row is not None:
        return (
            f"{row.product} {row.cu} ({show(build)})"
            if row.cu != "*"
            else f"{row.product}, a CU not in the lifecycle table ({show(build)})"
        )
    return f"build {show(build)}, not a known Exchange product"


def _newest_known(build: Build, tables: Tables) -> bool:
    """True when the build is newer than every CU the tables list for its major.minor (the tables are behind)."""
    known = [r.cu_build[:3] for r in tables.lifecycle.rows if r.cu != "*" and r.cu_build[:2] == build[:2]]
    return bool(known) and build[:3] > max(known)


@dataclass(frozen=True)
class Support:
    """A server's product/CU support verdict: supported, or why not and what to move to."""

    row: LifecycleRow | None
    problem: str | None
    move_to: str


def support(build: Build, today: dt.date, tables: Tables | None = None) -> Support:
    """Is the product and CU of this build supported today? Out of support: its end_of_support has passed.
    An unknown build of 15.x falls under its product's "*" row; outside every product it is not supported."""
    tables = tables or default_tables()
    row = lifecycle_of(build, tables)
    label = name(build, tables)
    if row is None:
        return Support(
            None,
            f"{label}: the lifecycle table (as of {tables.lifecycle.as_of}) knows no such product",
            "a supported Exchange product (see the lifecycle table)",
        )
    if row.end_of_support is None or row.end_of_support > today:
        return Support(row, None, "")
    esu = (
        f"; Extended Security Updates ended {row.esu_end}"
        if row.esu_end and row.esu_end <= today
        else f"; security updates only under the paid ESU programme, until {row.esu_end}"
        if row.esu_end
        else "; this CU had no Extended Security Updates"
    )
    return Support(row, f"{label} is out of support since {row.end_of_support}{esu}", row.move_to)


def same_cu(admin_display_version: Build, exsetup: Build) -> bool:
    """AdminDisplayVersion shows the CU; ExSetup adds the SU revision: the first three parts must agree."""
    return admin_display_version[:3] == exsetup[:3]


def currency(exsetup: Build, tables: Tables | None = None) -> str | None:
    """Why a server's build is not current, or None when it runs the latest SU of its CU in the build table."""
    tables = tables or default_tables()
    cu = cu_of(exsetup, tables)
    if cu is None:
        if _newest_known(exsetup, tables):
            return (
                f"{show(exsetup)} is newer than every CU the build table (as of {tables.builds.as_of}) knows: "
                "dagcheck cannot judge its SU level; point --build-table at a newer table"
            )
        return (
            f"{name(exsetup, tables)} is not a CU that still receives Security Updates "
            f"(supported: {', '.join(f'{c.product} {c.cu}' for c in tables.builds.cus)})"
        )
    if exsetup < cu.latest_su_build:
        return f"{cu.product} {cu.cu} at {show(exsetup)} lacks {cu.latest_su} ({show(cu.latest_su_build)}, {cu.latest_su_date})"
    return None


@dataclass(frozen=True)
class RollingParity:
    """Parity while a patch window is in progress: every member on the old or the target build."""

    target: Build
    old: tuple[Build, ...]  # builds of the members not yet patched (more than one: a problem)
    patched: tuple[str, ...]
    left: tuple[str, ...]
    problem: str | None

    def progress(self) -> str:
        where = f" ({', '.join(self.left)} on {', '.join(map(show, self.old))})" if self.left else ""
        return (
            f"{len(self.patched)} of {len(self.patched) + len(self.left)} members on {show(self.target)}, "
            f"{len(self.left)} left{where}"
        )


def rolling_parity(builds: dict[str, Build], target: Build | None) -> RollingParity:
    """Judge a mixed-build DAG during a window. Without a declared target, the newest build seen is the
    target (the one the patched members went to). The members not on the target must all be on one
    old build; a third build means a member was patched to something else, or a patch stopped half-way."""
    goal = target or max(builds.values())
    patched = tuple(sorted(m for m, b in builds.items() if b == goal))
    left = tuple(sorted(m for m, b in builds.items() if b != goal))
    old = tuple(sorted({builds[m] for m in left}))
    problem = None
    if len(old) > 1:
        problem = (
            "members not on the target "
            + show(goal)
            + " are on more than one build: "
            + ", ".join(f"{m}={show(builds[m])}" for m in left)
        )
    elif old and old[0] > goal:
        problem = f"{', '.join(left)} run {show(old[0])}, newer than the window's target {show(goal)}"
    return RollingParity(goal, old, patched, left, problem)
