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


# ---- issue 22 step 1: collection, sources and rules each in their own place -----------------------------

ROOT = PACKAGE.parent


def test_collection_does_not_import_the_rules() -> None:
    """collect.py schedules and runs the sources (dagcheck/sources/); analysis (dagcheck/rules/) reads what it
    collected, never the other way round."""
    graph = _graph()
    assert not sorted(e for e in graph["dagcheck.collect"] if e.startswith("dagcheck.rules"))


def test_rules_do_not_import_the_transport() -> None:
    """The rules are pure functions over the sources' dataclasses: what a command printed (CmdResult) is
    parsed by its source, so no rule reaches into dagcheck.remote."""
    graph = _graph()
    offenders = {m: sorted(e for e in edges if e.startswith("dagcheck.remote"))
                 for m, edges in graph.items() if m.startswith("dagcheck.rules")}
    assert not {m: e for m, e in offenders.items() if e}


def _imports_model(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name == "dagcheck.model" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (
            node.module == "dagcheck.model" or (node.module == "dagcheck" and any(a.name == "model" for a in node.names))
        ):
            return True
    return False


def test_there_is_no_model_module_every_source_holds_its_own_dataclasses() -> None:
    """model.py held every cmdlet's dataclass and parser away from its command; each now lives in its source
    module (dagcheck/sources/<resource>.py), with the shared readers in dagcheck/sources/values.py."""
    assert "dagcheck.model" not in _graph()
    assert not (PACKAGE / "model.py").exists() and not (PACKAGE / "model").exists()
    files = [p for d in ("dagcheck", "checks", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py")]
    files += [p for p in (ROOT / "conftest.py",) if p.exists()]
    assert not sorted(str(p.relative_to(ROOT)) for p in files if _imports_model(p))


def test_model_import_finder_sees_both_spellings(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from dagcheck import clixml, model\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("def f():\n    from dagcheck.model import prop\n", encoding="utf-8")
    (tmp_path / "c.py").write_text("from dagcheck.sources import values as model\n", encoding="utf-8")
    assert [_imports_model(tmp_path / n) for n in ("a.py", "b.py", "c.py")] == [True, True, False]
