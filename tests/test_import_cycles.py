"""No import cycles inside the core or any backend package, lazy imports included.

A cycle through a function-level import still couples two modules both ways (the
adapter-loading cycle this test was written against was one), so every `import` statement
counts except those under `if TYPE_CHECKING:`. Run it alone with

    .venv/bin/python -m pytest -q tests/test_import_cycles.py

or `.venv/bin/python tests/test_import_cycles.py` to print the graph's cycles.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

PACKAGES = ("unified_prompt", "unified_prompt_hf", "unified_prompt_paddle", "unified_prompt_openai")


def package_modules(package: str) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of an installed package."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
    root = Path(next(iter(spec.submodule_search_locations)))
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, str | None]]:
    """(module, name) for every import statement in `tree`: name is None for `import m`,
    else the name taken `from m` (relative modules resolved)."""
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            for child in node.orelse:  # type: ignore[attr-defined]
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            found.extend((base, alias.name) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of `packages` it imports; `from a import b` names module a.b
    where one exists, else module a."""
    files: dict[str, Path] = {}
    for package in packages:
        files.update(package_modules(package))
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = set()
        for base, name in _imports(tree, module, path.name == "__init__.py"):
            target = f"{base}.{name}" if name and f"{base}.{name}" in files else base
            if target in files and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(out)


def test_the_checker_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x.y\n"
                     "def f():\n    from . import z\n    from .w import v\n")
    assert _imports(tree, "p.m", False) == [("typing", "TYPE_CHECKING"), ("p", "z"),
                                            ("p.w", "v")]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles (each line one strongly connected group):\n" + "\n".join(
        " <-> ".join(c) for c in found)


if __name__ == "__main__":
    for component in cycles(import_graph()):
        print(" <-> ".join(component))
