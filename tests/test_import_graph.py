"""Module structure of src/toolr0: no import cycle between modules (module-level imports only), module-level
imports only along ARCHITECTURE.md's layer table, and no module over 450 lines (small modules with one job)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "toolr0"
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _top_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The toolr0 modules ``name`` imports at module level (not inside functions or ``if TYPE_CHECKING``)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join([*pkg, base] if base else pkg)
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if "TYPE_CHECKING" not in test:
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return {m for m in out if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _top_level_imports(path, name, set(mods)) for name, path in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def test_the_graph_reads_module_level_imports_only():
    graph = _graph()
    assert "toolr0.core.parsing" in graph["toolr0.core.completions"]
    assert "toolr0.inference.grammar" in graph["toolr0.inference.structured"]
    # prompts is imported inside a function of the question gate: not a module-level edge
    assert "toolr0.core.prompts" not in graph["toolr0.core.question_gate"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_toolr0_modules():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_over_450_lines():
    long = {
        str(p.relative_to(SRC)): n
        for p in sorted(PKG.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


# ARCHITECTURE.md's layer table: the toolr0 layers a layer may import at module level (imports inside functions
# are free). `util` = the package root, `toolr0.errors`, `toolr0.io`, `toolr0.cache`, `toolr0.procmem`; `toolr0.config` assembles
# every layer's config section and may import any of them.
UTIL = {"toolr0", "toolr0.errors", "toolr0.io", "toolr0.cache", "toolr0.procmem"}
LAYER_IMPORTS = {
    "util": {"util"},
    "core": {"util", "core"},
    "inference": {"util", "core", "inference"},
    "training": {"util", "core", "training"},
    "selfplay": {"util", "core", "inference", "config", "selfplay"},
    "eval": {"util", "core", "eval"},
    "cli": {"util", "cli"},
}


def _layer(module: str) -> str:
    return "util" if module in UTIL else module.split(".")[1]


def _layer_violations(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{m} -> {d}"
        for m, deps in sorted(graph.items())
        if _layer(m) in LAYER_IMPORTS
        for d in sorted(deps)
        if _layer(d) not in LAYER_IMPORTS[_layer(m)]
    ]


def test_the_layer_check_finds_an_upward_import():
    assert _layer_violations({"toolr0.core.a": {"toolr0.inference.b"}}) == [
        "toolr0.core.a -> toolr0.inference.b"
    ]
    assert _layer_violations({"toolr0.eval.a": {"toolr0.core.b", "toolr0.io"}}) == []


def test_every_module_is_in_a_known_layer():
    assert {_layer(m) for m in _graph()} <= {*LAYER_IMPORTS, "config"}


def test_module_level_imports_follow_the_layer_table():
    bad = _layer_violations(_graph())
    assert not bad, "module-level imports against ARCHITECTURE.md's layer table: " + ", ".join(bad)
