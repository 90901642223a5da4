"""The package's import graph: no circle, the product does not reach into the lab, the lab does not borrow
the checker's answers (issue: a lab as clear as the product)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dagcheck"


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at module or function level, absolute or relative, or loads
    by name: `pytest_plugins` strings, `pluginmanager.import_plugin("...")`, `importlib.import_module("...")` and
    `__import__("...")` literals (a plugin loaded by name imports its loader back as surely as an import does)."""
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        home = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = _imported(node, home) + _loaded_by_name(node, home)
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def _absolute(module: str, level: int, home: str) -> str:
    """`module` as written after `from` with `level` dots, seen from the package `home`."""
    if level == 0:
        return module
    base = home.split(".")[: len(home.split(".")) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _imported(node: ast.AST, home: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        module = _absolute(node.module or "", node.level, home)
        return [module] + [f"{module}.{a.name}" for a in node.names]
    return []


def _strings(node: ast.AST | None) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _loaded_by_name(node: ast.AST, home: str) -> list[str]:
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in targets):
            return _strings(node.value)
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if called in ("import_plugin", "import_module", "__import__"):
            names = _strings(node.args[0])
            package = _strings(node.args[1]) if called == "import_module" and len(node.args) > 1 else []
            return [_absolute(n.lstrip("."), len(n) - len(n.lstrip(".")), (package or [home])[0]) for n in names]
    return []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
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
    offenders = {
        m: sorted(e for e in edges if e.startswith("dagcheck.lab"))
        for m, edges in graph.items()
        if m.startswith(("dagcheck.remote", "dagcheck.rules"))
    }
    assert not {m: e for m, e in offenders.items() if e}


# The product's doors into the lab (README, How it is built): the embedded lab it starts, the settings
# the inventory loader hands the raw `lab:` section to, and `dagcheck lab`, which hands over to the lab's CLI.
LAB_DOORS = {"dagcheck.lab.embedded", "dagcheck.lab.settings", "dagcheck.lab.__main__"}


def test_the_product_enters_the_lab_only_through_its_doors() -> None:
    graph = _graph()
    offenders = {
        m: sorted(e for e in edges if e.startswith("dagcheck.lab.") and e not in LAB_DOORS)
        for m, edges in graph.items()
        if not m.startswith("dagcheck.lab")
    }
    assert not {m: e for m, e in offenders.items() if e}


def test_lab_does_not_import_the_checkers_rules_or_data() -> None:
    graph = _graph()
    offenders = {
        m: sorted(e for e in edges if e.startswith(("dagcheck.rules", "dagcheck.data", "dagcheck.facts")))
        for m, edges in graph.items()
        if m.startswith("dagcheck.lab")
    }
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
    offenders = {
        m: sorted(e for e in edges if e.startswith("dagcheck.remote"))
        for m, edges in graph.items()
        if m.startswith("dagcheck.rules")
    }
    assert not {m: e for m, e in offenders.items() if e}


def _imports_model(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name == "dagcheck.model" for a in node.names):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module == "dagcheck.model" or (node.module == "dagcheck" and any(a.name == "model" for a in node.names)))
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


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_the_graph_counts_plugins_loaded_by_name_and_imports_inside_functions(tmp_path: Path) -> None:
    # dagcheck.plugin loaded report.plugin by `pytest_plugins`, which imported back from it inside functions.
    package = _package(
        tmp_path,
        {
            "face.py": 'pytest_plugins = ["pkg.report"]\n',
            "report.py": "def hook():\n    from pkg.face import KEY\n",
        },
    )
    assert _cycle(_graph(package)) == ["pkg.face", "pkg.report", "pkg.face"]


def test_the_graph_counts_relative_imports_and_modules_imported_by_string(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "sub/__init__.py": "from . import low\n",
            "sub/low.py": "def f():\n    from ..top import X\n",
            "top.py": 'import importlib\n\ndef g(config):\n    config.pluginmanager.import_plugin("pkg.other")\n'
            '    importlib.import_module(".sub", "pkg")\n',
            "other.py": "",
        },
    )
    graph = _graph(package)
    assert graph["pkg.sub"] == {"pkg.sub.low"}
    assert graph["pkg.sub.low"] == {"pkg.top"}
    assert graph["pkg.top"] == {"pkg.other", "pkg.sub"}
    assert _cycle(graph) == ["pkg.sub", "pkg.sub.low", "pkg.top", "pkg.sub"]


# ---- run state: in config.stash, never on a class (issue 22) --------------------------------------------

_MUTABLE_CALLS = {"list", "dict", "set", "defaultdict", "deque", "OrderedDict", "Counter", "bytearray"}


def _mutable(value: ast.AST | None) -> bool:
    if isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp):
        return True
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in _MUTABLE_CALLS


def _assigned_names(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return [e for t in node.targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
    if isinstance(node, ast.AugAssign | ast.AnnAssign):
        return [node.target]
    return []


def _hook_state_classes(tree: ast.Module) -> set[str]:
    """Classes with class-level mutable state (a class-body name bound to a list, dict or set, or any attribute
    assigned through the class's name) that a pytest hook uses (the class has a pytest_* method, or a pytest_*
    function names it)."""
    classes = {c.name: c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)}
    stateful = {
        name for name, c in classes.items() if any(_mutable(s.value) for s in c.body if isinstance(s, ast.Assign | ast.AnnAssign))
    }
    stateful |= {
        t.value.id
        for node in ast.walk(tree)
        for t in _assigned_names(node)
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in classes
    }
    hooks = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) and f.name.startswith("pytest_")]
    used = {n.id for f in hooks for n in ast.walk(f) if isinstance(n, ast.Name)}
    used |= {
        name
        for name, c in classes.items()
        if any(isinstance(f, ast.FunctionDef) and f.name.startswith("pytest_") for f in c.body)
    }
    return stateful & used


def test_no_pytest_hook_keeps_run_state_on_a_class() -> None:
    # pytest may run twice in one process (tests/conftest.py does): a run's state on a class outlives the run.
    offenders = {
        p.relative_to(PACKAGE.parent).as_posix(): sorted(found)
        for p in PACKAGE.rglob("*.py")
        if (found := _hook_state_classes(ast.parse(p.read_text(encoding="utf-8"))))
    }
    assert not offenders, f"class-level state used by pytest hooks (keep it in config.stash): {offenders}"


def test_the_class_state_finder_finds_a_shared_table() -> None:
    # What dagcheck/report/plugin.py's _HtmlTable was: class attributes set by one hook and read by another.
    tree = ast.parse(
        "class _Table:\n    left_out: set[str] = set()\n    data = None\n\n"
        "def pytest_html_report_title(report):\n    _Table.data = report\n\n"
        "class _Fine:\n    def __init__(self):\n        self.rows = []\n\n"
        "    def pytest_sessionstart(self, session):\n        self.rows.append(session)\n"
    )
    assert _hook_state_classes(tree) == {"_Table"}
    assert _hook_state_classes(ast.parse("class T:\n    data = None\n\ndef pytest_x(r):\n    T.data = r\n")) == {"T"}
