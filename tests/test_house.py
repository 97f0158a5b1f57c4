"""House rules checked on the source itself: no import cycles between shift_hub's modules.

A cycle (a imports b, b imports a, at module level or inside a function) means two modules that cannot be
read, tested or changed one without the other; a lazy import inside a function hides the cycle from Python
but not from the reader, so function-level imports count too. Only imports under `if TYPE_CHECKING:` are
left out (they never run). The walker reads the source with `ast`: nothing is imported.
"""
from __future__ import annotations

import ast
import textwrap
from collections import deque
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "shift_hub"


# ----------------------------------------------------------------------------------------------
# the walker
# ----------------------------------------------------------------------------------------------

def package_modules(package_dir: Path, package: str | None = None) -> dict[str, Path]:
    """{dotted module name: file} for every .py under `package_dir`; a package's `__init__.py` is the package."""
    package = package or package_dir.name
    modules = {}
    for file in sorted(package_dir.rglob("*.py")):
        parts = list(file.relative_to(package_dir).with_suffix("").parts)
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package, *parts])] = file
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node, at any depth, except those under `if TYPE_CHECKING:` (its else runs)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _base_package(module: str, is_package: bool, level: int) -> str:
    """The package a relative import of `level` dots starts from, inside `module`."""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    return ".".join(parts[:len(parts) - (level - 1)])


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules) -> set[str]:
    """The modules of `modules` that one import statement loads: `from .pkg import name` is the submodule
    pkg.name when there is one, else pkg itself; `import a.b.c` is the deepest of a.b.c, a.b, a that exists."""
    if isinstance(node, ast.Import):
        found = set()
        for alias in node.names:
            parts = alias.name.split(".")
            for end in range(len(parts), 0, -1):
                if ".".join(parts[:end]) in modules:
                    found.add(".".join(parts[:end]))
                    break
        return found
    base = _base_package(module, is_package, node.level) if node.level else ""
    source = ".".join(p for p in (base, node.module or "") if p)
    found = set()
    for alias in node.names:
        if f"{source}.{alias.name}" in modules:
            found.add(f"{source}.{alias.name}")
        elif source in modules:
            found.add(source)
    return found


def import_graph(package_dir: Path, package: str | None = None) -> dict[str, dict[str, list[str]]]:
    """{module: {imported module: ["path:line  statement", ...]}}, edges between the package's own modules
    only; a module importing itself (e.g. `from . import __version__` in a package's `__init__`) is no edge."""
    modules = package_modules(package_dir, package)
    root = package_dir.parent
    graph: dict[str, dict[str, list[str]]] = {name: {} for name in modules}
    for name, file in modules.items():
        text = file.read_text(encoding="utf-8")
        lines = text.splitlines()
        is_package = file.name == "__init__.py"
        for node in _imports(ast.parse(text, filename=str(file))):
            for target in _targets(node, name, is_package, modules) - {name}:
                where = f"{file.relative_to(root).as_posix()}:{node.lineno}  {lines[node.lineno - 1].strip()}"
                graph[name].setdefault(target, []).append(where)
    return graph


def strongly_connected(graph: dict[str, dict]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, each sorted, the list sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _shortest_path(graph: dict[str, dict], start: str, goal: str, within: set[str]) -> list[str]:
    came = {start: None}
    todo = deque([start])
    while todo:
        node = todo.popleft()
        if node == goal:
            path = []
            while node is not None:
                path.append(node)
                node = came[node]
            return path[::-1]
        for nxt in sorted(graph[node]):
            if nxt in within and nxt not in came:
                came[nxt] = node
                todo.append(nxt)
    raise AssertionError(f"{goal} is not reachable from {start} inside its component")


def import_cycles(graph: dict[str, dict]) -> list[list[str]]:
    """Cycles `[a, b, ..., a]`: for every import inside a strongly connected component, the shortest cycle
    through it, so that every import that closes a cycle is named at least once (rotations deduplicated)."""
    cycles, seen = [], set()
    for component in strongly_connected(graph):
        members = set(component)
        for a in component:
            for b in sorted(graph[a]):
                if b not in members:
                    continue
                cycle = [a] + _shortest_path(graph, b, a, members)
                key = _canonical(cycle[:-1])
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
    return cycles


def _canonical(ring: list[str]) -> tuple[str, ...]:
    start = ring.index(min(ring))
    return tuple(ring[start:] + ring[:start])


def describe_cycles(graph: dict[str, dict], cycles: list[list[str]]) -> str:
    """Each cycle as `a -> b -> a`, then the import statements that make each of its steps."""
    out = []
    for cycle in cycles:
        out.append("  " + " -> ".join(cycle))
        for a, b in zip(cycle, cycle[1:]):
            out += [f"      {where}" for where in graph[a][b]]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------
# the rule
# ----------------------------------------------------------------------------------------------

def test_shift_hub_has_no_import_cycles():
    graph = import_graph(PACKAGE_DIR)
    cycles = import_cycles(graph)
    assert not cycles, (
        f"{len(cycles)} import cycle(s) in shift_hub (function-level imports count; move the shared code to "
        f"the module it belongs in, or pass the value in):\n{describe_cycles(graph, cycles)}")


def test_reports_metrics_and_the_version_are_in_no_import_cycle():
    """report.py builds the outputs and html_report.py renders report.html: html_report never imports report
    (the one-line descriptions both print live in left_out.py); intervals.py is handed ImageNet-C's
    definitions by metrics.py rather than importing them; the version is read from _version.py, never from
    the package's `__init__`, whose `evaluate`/`leaderboard` import these modules."""
    graph = import_graph(PACKAGE_DIR)
    in_cycles = {module for component in strongly_connected(graph) for module in component}
    fixed = {f"shift_hub.evaluation.{name}" for name in
             ("report", "html_report", "left_out", "metrics", "intervals", "leaderboard")} | {"shift_hub._version"}
    assert not fixed & in_cycles, describe_cycles(graph, [c for c in import_cycles(graph) if fixed & set(c)])
    assert "shift_hub.evaluation.report" not in graph["shift_hub.evaluation.html_report"]


GENERATION_LAYERS = {  # each module may import only modules of an earlier layer
    "shift_hub.jobs": 0, "shift_hub.hygiene": 0,
    "shift_hub.planning": 1, "shift_hub.rows": 1, "shift_hub.shard_writer": 1,
    "shift_hub.worker": 2, "shift_hub.engines": 2,
    "shift_hub.generate": 3,
}


def test_generation_arrows_go_one_way():
    """planning, rows, the shard writer and worker hygiene sit under the worker and the engines, which sit under
    generate: engines receive job groups and the function that runs one, and import nothing above them."""
    graph = import_graph(PACKAGE_DIR)
    for module, layer in GENERATION_LAYERS.items():
        above = [m for m in graph[module] if GENERATION_LAYERS.get(m, -1) >= layer]
        assert not above, f"{module} imports {above}: above or beside it"
    assert not {"shift_hub.worker", "shift_hub.generate", "shift_hub.planning"} & set(graph["shift_hub.engines"])
    assert "shift_hub.generate" not in graph["shift_hub.masks"]


# ----------------------------------------------------------------------------------------------
# the walker itself, on synthetic packages
# ----------------------------------------------------------------------------------------------

def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


def test_walker_finds_a_cycle_made_by_a_function_level_import(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "VERSION = 1\n",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from .sub import c\n",
        "sub/__init__.py": "",
        "sub/c.py": "import pkg.a\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg.b"] == {"pkg.sub.c": ["pkg/b.py:2  from .sub import c"]}  # the submodule, not pkg.sub
    cycles = import_cycles(graph)
    assert cycles == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
    assert "pkg.a -> pkg.b -> pkg.sub.c -> pkg.a" in describe_cycles(graph, cycles)


def test_walker_finds_no_cycle_where_there_is_none(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "from . import VERSION\n",  # itself: no edge
        "a.py": "from . import b\nfrom .b import helper\nfrom .. import elsewhere\nimport os\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n"
                "from .sub import name_in_init\n",
        "sub/__init__.py": "from .. import VERSION\n",  # a name of pkg's __init__: an edge to pkg
        "sub/c.py": "",
    })
    graph = import_graph(pkg)
    assert graph["pkg.b"] == {"pkg.sub": ["pkg/b.py:4  from .sub import name_in_init"]}  # TYPE_CHECKING left out
    assert graph["pkg.sub"] == {"pkg": ["pkg/sub/__init__.py:1  from .. import VERSION"]}
    assert import_cycles(graph) == []


def test_walker_lists_every_import_that_closes_a_cycle(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b, c\n",
        "b.py": "from . import a\n",
        "c.py": "def f():\n    from .a import x\n",
    })
    graph = import_graph(pkg)
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"], ["pkg.a", "pkg.c", "pkg.a"]]
