"""Read a YAML file an administrator wrote, within bounds, before any schema sees it.

A real inventory is a few KiB, a few levels deep, with a handful of anchors: a hostile or mangled file
(a "billion laughs", UTF-16 from Notepad, duplicate keys YAML would silently merge) fails fast here
with an InventoryError naming the file and, where YAML knows it, the line. The inventory loader and
dagcheck discover's seed both read through read_yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dagcheck.errors import InventoryError

# Bounds on what the loader accepts, so that a hostile or mangled file fails fast (issue 9): a real
# inventory is a few KiB, a few levels deep, with a handful of anchors.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32
MAX_ALIAS_VALUES = 200_000  # values YAML aliases add when copied out (a "billion laughs" adds 10^9)
_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
SAVE_AS_UTF8 = "save it as UTF-8 (PowerShell: Get-Content FILE | Set-Content -Encoding utf8 NEW)"


class _BoundedComposer(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys (PyYAML keeps the last one silently), nesting deeper than
    MAX_DEPTH (its composer recurses), and aliases that add more than MAX_ALIAS_VALUES or refer to themselves."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        _expanded_size(node)
        return node

    def construct_yaml_timestamp(self, node: Any) -> Any:
        """PyYAML builds an unquoted 2026-02-30 into a date and raises a bare ValueError; here it says where."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date or time ({exc})", node.start_mark
            ) from None

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = key_node.value
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first at line {seen[key].line + 1}; YAML would keep only the last)",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


_BoundedComposer.add_constructor("tag:yaml.org,2002:timestamp", _BoundedComposer.construct_yaml_timestamp)


def _expanded_size(root: Any) -> int:
    """Values the aliases add to the document when copied out (a node referred to again counts its whole
    subtree once more); refuses cycles, and more than MAX_ALIAS_VALUES added, without expanding anything.
    Only what aliases add is limited: the nodes written out in the file are bounded by MAX_FILE_BYTES, and a
    10,000-server inventory without a single alias is no bomb."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    aliases = 0  # references to a node already composed (YAML's *alias)

    def size(node: Any) -> int:
        nonlocal aliases
        if id(node) in sizes:
            aliases += 1
            return sizes[id(node)]
        if id(node) in active:
            raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it", node.start_mark)
        active.add(id(node))
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1 + sum(size(child) for child in children)
        active.discard(id(node))
        sizes[id(node)] = total
        # Every distinct node met so far is one the file holds; anything this subtree counts beyond them was
        # added by aliases (a lower bound of what the whole document adds, so refusing here is never early).
        if total - len(sizes) > MAX_ALIAS_VALUES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"{aliases:,} alias(es) expand it by more than {MAX_ALIAS_VALUES:,} values (the limit on "
                "values added by YAML aliases (*name); an alias bomb?)",
                node.start_mark,
            )
        return total

    return size(root) - len(sizes) if root is not None else 0


def _decode(raw: bytes, file: str) -> str:
    """UTF-8 (a BOM is fine); anything else is refused with what it looks like and how to fix it."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise InventoryError(
                file, "", f"the file is {name} (it starts with a {name} byte-order mark), not UTF-8; {SAVE_AS_UTF8}"
            )
    if b"\x00" in raw[:4096]:
        raise InventoryError(
            file, "", f"the file contains NUL bytes: it looks like UTF-16 or binary, not UTF-8 text; {SAVE_AS_UTF8}"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InventoryError(
            file, f"line {line}", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); {SAVE_AS_UTF8}"
        ) from None


def read_yaml(path: str | Path) -> Any:
    """The file's YAML with the loader's bounds (size, read no further than the cap; encoding, duplicate keys,
    aliases) but no schema: load_inventory validates it; dagcheck discover's seed of connection settings is
    not a whole inventory yet."""
    file = str(path)
    try:
        with Path(path).open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InventoryError(file, "", f"cannot read the file ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InventoryError(
            file, "", f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; an inventory is a few KiB"
        )
    text = _decode(raw, file)
    try:
        return yaml.load(text, Loader=_BoundedComposer)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InventoryError(file, where, f"not valid YAML: {problem}") from None
    except (ValueError, OverflowError) as exc:  # PyYAML's timestamp and number constructors (e.g. 2026-13-45)
        raise InventoryError(file, "", f"not valid YAML: a value cannot be read ({exc})") from None
    except RecursionError:
        raise InventoryError(file, "", "not valid YAML: nested too deeply") from None
