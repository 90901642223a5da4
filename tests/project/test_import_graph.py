"""The package's import graph: no circle, the product does not reach into the lab, the lab does not borrow
the checker's answers (issue: a lab as clear as the product)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dagcheck"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle_in_dagcheck() -> None:
    assert _cycle(_graph()) is None, f"import circle: {' -> '.join(_cycle(_graph()) or [])}"


def test_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_transport_and_rules_do_not_import_the_lab() -> None:
    graph = _graph()
    offenders = {m: sorted(e for e in edges if e.startswith("dagcheck.lab"))
                 for m, edges in graph.items() if m.startswith(("dagcheck.remote", "dagcheck.rules"))}
    assert not {m: e for m, e in offenders.items() if e}


def test_lab_does_not_import_the_checkers_rules_or_data() -> None:
    graph = _graph()
    offenders = {m: sorted(e for e in edges if e.startswith(("dagcheck.rules", "dagcheck.data", "dagcheck.facts")))
                 for m, edges in graph.items() if m.startswith("dagcheck.lab")}
    assert not {m: e for m, e in offenders.items() if e}
    text = "\n".join(p.read_text(encoding="utf-8") for p in (PACKAGE / "lab").rglob("*.py"))
    assert "dagcheck.rules" not in text and "dagcheck.data" not in text
