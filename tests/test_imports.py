"""The grader package's import graph, read from its source: no cycles, and layers that import downward.

Every import counts, at module level or inside a function (a cycle hidden in a function still ties
two modules together). ``from grader.x import y`` imports ``grader.x.y`` when ``y`` is a submodule,
else ``grader.x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "grader"
# The sandbox isolates; what it runs and what the grade makes of it live above it.
ABOVE_SANDBOX = ("grader.submission", "grader.runner", "grader.integrity", "grader.batch", "grader.report",
                 "grader.grade", "grader.pipeline")


def module_name(path: Path, root: Path) -> str:
    """``grader/x/y.py`` -> ``grader.x.y``; ``grader/x/__init__.py`` -> ``grader.x``."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root: Path) -> dict[str, Path]:
    """Every module of the package in folder ``root``, by dotted name."""
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` (at ``path``) imports, anywhere in its source."""
    package = (name if path.name == "__init__.py" else name.rpartition(".")[0]).split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: level 1 is this module's package, each more one up
                anchor = package[:len(package) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return {target for target in found if target in modules and target != name}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = package_modules(root)
    return {name: imported(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(cycle_through(graph, group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def cycle_through(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle from the group's first module back to itself, staying inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{sorted(group)} is not strongly connected")


def within(name: str, packages: tuple[str, ...]) -> bool:
    """Whether module ``name`` is one of ``packages`` or inside one."""
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "grader.runner.network" in graph["grader.runner.loaders"]  # from ... import, module level
    assert "grader.stock_layers" in graph["grader.submission.pickle_scan"]  # inside a function
    assert "grader.submission.allowlists" in graph["grader.submission.pickle_scan"]  # a submodule by name
    assert "grader.sandbox.bwrap" in graph["grader.sandbox"]  # a package's __init__.py
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_relative_imports_resolve(tmp_path):
    package = tmp_path / "grader"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "top.py").write_text("")
    (package / "inner" / "__init__.py").write_text("from . import leaf\n")
    (package / "inner" / "leaf.py").write_text("def f():\n    from ..top import x\n    from .. import top\n")
    graph = import_graph(package)
    assert graph["grader.inner"] == {"grader.inner.leaf"}
    assert graph["grader.inner.leaf"] == {"grader.top"}


def test_the_package_has_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_sandbox_imports_nothing_above_it():
    graph = import_graph()
    upward = {f"{name} -> {target}" for name, targets in graph.items() if within(name, ("grader.sandbox",))
              for target in targets if within(target, ABOVE_SANDBOX)}
    assert not upward, f"the sandbox imports above itself: {sorted(upward)}"
