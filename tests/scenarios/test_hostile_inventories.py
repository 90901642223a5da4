"""Property-based fuzz of the inventory loader (hypothesis): random bytes, random YAML structures and mutated
valid inventories either load or raise InventoryError naming the file; nothing else ever escapes (no
traceback, no pytest INTERNALERROR). Bounded for CI: a few hundred examples per property, no deadline."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagcheck.errors import InventoryError
from dagcheck.inventory import Inventory, load_inventory, parse_inventory
from tests.conftest import LAB_YML, lab_data

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
DIR = Path(tempfile.mkdtemp(prefix="dagcheck-fuzz-"))
VALID = LAB_YML.read_bytes()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["mbx1", "DAG1", "Site-A", "kerberos", "in_maintenance"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.one_of(
                st.text(max_size=12),
                st.integers(),
                st.sampled_from(
                    [
                        "servers",
                        "sites",
                        "dags",
                        "name",
                        "fqdn",
                        "site",
                        "dag",
                        "members",
                        "lab",
                        "faults",
                        "kind",
                        "server",
                        "connection",
                        "expectations",
                        "maintenance",
                    ]
                ),
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=30,
)


def _load(raw: bytes) -> Inventory | None:
    path = DIR / "inventory.yml"
    path.write_bytes(raw)
    try:
        return load_inventory(path)
    except InventoryError as exc:
        assert str(path) in str(exc)
        return None


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_load_or_raise_inventory_error(raw: bytes) -> None:
    _load(raw)


@FUZZ
@given(values)
def test_random_yaml_structures_load_or_raise_inventory_error(data: Any) -> None:
    _load(yaml.safe_dump(data, allow_unicode=True).encode("utf-8"))
    try:
        parse_inventory(data, "fuzz.yml")
    except InventoryError:
        pass


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 3), st.binary(min_size=1, max_size=4)), min_size=1, max_size=6
    )
)
def test_byte_mutations_of_the_lab_inventory_load_or_raise_inventory_error(edits: list[tuple[int, int, bytes]]) -> None:
    raw = bytearray(VALID)
    for at, cut, insert in edits:
        at = min(at, len(raw))
        raw[at : at + cut] = insert
    _load(bytes(raw))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


LAB = lab_data([{"kind": "in_maintenance", "server": "mbx3"}, {"kind": "hostile_response", "server": "mbx2"}])
LAB_PATHS = _paths(LAB)[1:]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(LAB_PATHS), st.one_of(values, st.just(KeyError))), min_size=1, max_size=4))
def test_structural_mutations_of_the_lab_inventory_load_or_raise_inventory_error(changes: list[tuple[Any, Any]]) -> None:
    data = copy.deepcopy(LAB)
    for path, value in changes:
        parent: Any = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            if value is KeyError:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this path
    _load(yaml.safe_dump(data).encode("utf-8"))


def test_the_unmutated_lab_inventory_loads() -> None:
    """The fuzz's starting point is valid, so its mutations probe the validator, not the parser alone."""
    assert _load(VALID) is not None


# ---- the cases a new user hit (issue 9), each a clear one-line error naming the file --------------------

LAUGHS = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "lol"] * 9) + "]\n" for i in range(9))
NAMED = [
    ("alias bomb", LAUGHS.encode(), "expand it by more than 200,000 values (the limit on values added by YAML aliases"),
    ("alias to itself", b"sites: &a [*a]\n", "an alias refers to a node that contains it"),
    (
        "duplicate key",
        b"sites: []\nservers: []\nsites: [{name: A}]\n",
        "line 3, column 1: not valid YAML: duplicate key 'sites' (first at line 1",
    ),
    (
        "duplicate nested key",
        VALID.replace(b"  copy_queue_max: 6\n", b"  copy_queue_max: 6\n  copy_queue_max: 5\n"),
        "duplicate key 'copy_queue_max'",
    ),
    ("deep nesting", b"sites: " + b"[" * 10_000 + b"]" * 10_000 + b"\n", "nested deeper than 32 levels"),
    ("UTF-16 with BOM", VALID.decode().encode("utf-16"), "the file is UTF-16"),
    ("UTF-16 without BOM", VALID.decode().encode("utf-16-le"), "NUL bytes: it looks like UTF-16"),
    ("Latin-1", VALID.replace(b"Site-A", "Sité-A".encode("latin-1")), "not UTF-8 text (byte 0xe9"),
    ("impossible date", b"sites: 2026-13-45\n", "line 1, column 8: not valid YAML: '2026-13-45' is not a valid date or time"),
    ("number key", b"sites: []\n1: x\nfoo: y\n", "key 1 is not text"),
    ("too large", b"#" * (5 * 1024 * 1024), "larger than 4 MiB"),
]


def test_named_hostile_inventories_fail_fast_with_one_clear_line() -> None:
    import time

    for name, raw, expected in NAMED:
        started = time.perf_counter()
        path = DIR / "inventory.yml"
        path.write_bytes(raw)
        try:
            load_inventory(path)
        except InventoryError as exc:
            message = str(exc)
        else:
            raise AssertionError(f"{name}: loaded")
        assert message.startswith(f"invalid inventory {path}"), (name, message)
        assert expected in message and "\n" not in message, (name, message)
        print(f"{name}: {time.perf_counter() - started:.3f} s")


def test_a_utf8_bom_is_fine() -> None:
    assert _load(b"\xef\xbb\xbf" + VALID) is not None


def test_a_hostile_inventory_is_a_usage_error_not_an_internal_error(tmp_path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    for name, raw, expected in NAMED[:6]:
        path = tmp_path / "inventory.yml"
        path.write_bytes(raw)
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--inventory", str(path), "-p", "no:cacheprovider"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 4, (name, output[-1500:])
        assert expected in output and "INTERNALERROR" not in output and "Traceback" not in output, (name, output)
